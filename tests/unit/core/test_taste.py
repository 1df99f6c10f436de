from __future__ import annotations

import json

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.taste import (
    EvidenceWeights,
    TasteObs,
    TasteState,
    click_evidence,
    fold_taste,
    review_evidence,
    review_sentiment,
)

DIM = 16
HL = 30 * 86400.0
T0 = 1_700_000_000_000
W = EvidenceWeights()


def unit_vectors(seed: int, n: int) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def cos(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def history(seed: int, n: int) -> TasteState:
    """A user with some mixed history (at least one positive event)."""
    rng = np.random.default_rng(seed)
    state = TasteState()
    for i, v in enumerate(unit_vectors(seed, n)):
        evidence = 1.0 if i == 0 else float(rng.uniform(-1, 1.5))
        state, _ = fold_taste(state, TasteObs(v, evidence, T0 + i * 60_000), HL)
    return state


seeds = st.integers(0, 10_000)


@given(seeds, st.integers(1, 8), st.floats(1.5, 5.0), st.integers(0, 10**9))
def test_positive_review_moves_taste_toward_the_item(
    seed: int, n: int, stars: float, dt: int
) -> None:
    state = history(seed, n)
    item = unit_vectors(seed + 1, 1)[0]
    evidence = review_evidence(valence=0.8, rating=max(stars, 4.0), w=W)
    assert evidence > 0
    assert state.vector is not None and state.updated_at is not None
    new, changed = fold_taste(state, TasteObs(item, evidence, state.updated_at + dt), HL)
    assert changed and new.vector is not None
    assert cos(new.vector, item) > cos(state.vector, item) - 1e-5


@given(seeds, st.integers(1, 8), st.integers(0, 10**9))
def test_negative_review_moves_taste_away_from_the_item(seed: int, n: int, dt: int) -> None:
    state = history(seed, n)
    item = unit_vectors(seed + 1, 1)[0]
    evidence = review_evidence(valence=-0.9, rating=1, w=W)
    assert evidence < 0
    assert state.vector is not None and state.updated_at is not None
    new, _ = fold_taste(state, TasteObs(item, evidence, state.updated_at + dt), HL)
    assert new.vector is not None
    assert cos(new.vector, item) < cos(state.vector, item) + 1e-5


@given(seeds, st.integers(1, 8))
def test_weights_stay_non_negative(seed: int, n: int) -> None:
    state = history(seed, n)
    assert state.weight >= state.pull >= 0


def test_evidence_signs_and_dwell() -> None:
    assert click_evidence("purchase", 0, W) > click_evidence("add_to_cart", 0, W) > 0
    assert click_evidence("skip", 0, W) < 0
    assert abs(click_evidence("skip", 0, W)) < click_evidence("purchase", 0, W)  # weak push
    short, long = click_evidence("click", 1_000, W), click_evidence("click", 60_000, W)
    assert 0 < short < long < W.click
    assert click_evidence("view", 60_000, W) < long
    assert click_evidence("view", -5, W) == 0.0
    with pytest.raises(ValueError, match="unknown action"):
        click_evidence("like", 0, W)
    assert (
        review_evidence(1.0, 5, W) > review_evidence(0.0, None, W) > 0 > review_evidence(-1, 1, W)
    )
    # the star rating dominates a mismatched text when present
    assert review_sentiment(0.5, 1, W) < 0 < review_sentiment(-0.5, 5, W)


def test_cold_and_only_negative_users_have_no_query() -> None:
    assert TasteState().query() is None
    item = unit_vectors(0, 1)[0]
    pushed, _ = fold_taste(TasteState(), TasteObs(item, -0.2, T0), HL)
    assert pushed.vector is not None and pushed.query() is None
    pulled, _ = fold_taste(pushed, TasteObs(unit_vectors(1, 1)[0], 1.0, T0 + 1), HL)
    query = pulled.query()
    assert query is not None and np.linalg.norm(query) == pytest.approx(1.0, abs=1e-6)


def test_zero_evidence_changes_nothing_and_a_new_dim_restarts() -> None:
    state = history(3, 3)
    same, changed = fold_taste(state, TasteObs(unit_vectors(9, 1)[0], 0.0, T0 + 10**9), HL)
    assert same is state and not changed
    other_space = np.ones(DIM + 1, dtype=np.float32)
    restarted, changed = fold_taste(state, TasteObs(other_space, 1.0, T0 + 10**9), HL)
    assert changed and restarted.vector is not None and restarted.vector.shape == (DIM + 1,)
    assert restarted.weight == restarted.pull == 1.0


def test_old_evidence_fades_against_new() -> None:
    a, b = unit_vectors(5, 2)
    state, _ = fold_taste(TasteState(), TasteObs(a, 1.0, T0), HL)
    state, _ = fold_taste(state, TasteObs(b, 1.0, T0 + int(4 * HL * 1000)), HL)  # 4 half-lives
    assert state.vector is not None
    assert cos(state.vector, b) > 0.95


@given(seeds, st.integers(0, 6))
def test_to_dict_round_trip_is_exact(seed: int, n: int) -> None:
    state = history(seed, n) if n else TasteState()
    again = TasteState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    assert state.vector is None or not state.vector.flags.writeable


def test_review_valence_shift_is_clipped_and_zero_is_the_identity() -> None:
    from stream.core.taste import review_valence

    assert review_valence(-0.42, 0.9, EvidenceWeights(review_valence_shift=0.0)) == -0.42
    shifted = EvidenceWeights(review_valence_shift=0.3)
    assert review_valence(-0.5, 0.9, shifted) == pytest.approx(-0.2)
    assert review_valence(0.9, 0.9, shifted) == 1.0
    assert review_valence(-1.0, 0.9, EvidenceWeights(review_valence_shift=-0.5)) == -1.0
    assert review_valence(0.0, 0.0, shifted) == 0.0  # an empty text: nothing to calibrate
