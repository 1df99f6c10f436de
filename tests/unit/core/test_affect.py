from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.affect import AffectObs, ItemAffect, affect_at, fold_affect

HL = 90 * 86400.0
T0 = 1_700_000_000_000

reviews = st.lists(
    st.builds(
        AffectObs,
        valence=st.floats(-1.0, 1.0),
        ts=st.integers(T0, T0 + 400 * 86_400_000),
        weight=st.floats(0.0, 3.0),
    ),
    max_size=15,
)


def fold_all(obs: list[AffectObs]) -> ItemAffect:
    state = ItemAffect()
    for o in obs:
        state, _ = fold_affect(state, o, HL)
    return state


@given(reviews)
def test_mean_is_bounded_and_weight_non_negative(obs: list[AffectObs]) -> None:
    state = fold_all(obs)
    assert state.weight >= 0
    assert -1 - 1e-9 <= state.mean() <= 1 + 1e-9
    assert abs(state.mean(prior=2.0)) <= abs(state.mean()) + 1e-12  # shrinkage toward neutral
    assert 0 <= state.confidence() < 1


@given(reviews, st.randoms(use_true_random=False))
def test_order_does_not_matter(obs: list[AffectObs], rnd: random.Random) -> None:
    shuffled = list(obs)
    rnd.shuffle(shuffled)
    a, b = fold_all(obs), fold_all(shuffled)
    assert a.total == pytest.approx(b.total, abs=1e-9)
    assert a.weight == pytest.approx(b.weight, abs=1e-9)
    assert a.count == b.count and a.updated_at == b.updated_at


@given(reviews)
def test_round_trip(obs: list[AffectObs]) -> None:
    state = fold_all(obs)
    assert ItemAffect.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_more_reviews_more_confidence_and_decay_lowers_it() -> None:
    one, _ = fold_affect(ItemAffect(), AffectObs(0.9, T0), HL)
    many = one
    for i in range(20):
        many, _ = fold_affect(many, AffectObs(0.8, T0 + i), HL)
    assert many.mean(prior=2.0) > one.mean(prior=2.0)
    assert many.confidence() > one.confidence()
    later = affect_at(many, T0 + int(3 * HL * 1000), HL)
    assert later.mean() == pytest.approx(many.mean())  # decay never changes the raw mean
    assert later.confidence() < many.confidence()


def test_bad_observations_are_ignored() -> None:
    state, mean = fold_affect(ItemAffect(), AffectObs(float("nan"), T0), HL)
    assert state == ItemAffect() and mean == 0.0
    state, _ = fold_affect(ItemAffect(), AffectObs(5.0, T0), HL)
    assert state.mean() == 1.0  # clipped
