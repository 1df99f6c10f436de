from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.affect import ItemAffect
from stream.core.emotion import EmotionSummary
from stream.core.rank import (
    VARIANTS,
    Candidates,
    RankParams,
    mmr,
    mmr_pool,
    rank,
    score_default,
)

NOW = 1_700_000_000_000
DIM = 8
SAD = EmotionSummary(valence=-0.9, arousal=0.3, dominant="sadness", weight=5.0)
CALM = EmotionSummary(valence=0.0, arousal=0.2, dominant="neutral", weight=5.0)
HAPPY = EmotionSummary(valence=0.9, arousal=0.6, dominant="joy", weight=5.0)


def vectors(n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def reviewed(mean: float, n: float = 10.0) -> ItemAffect:
    return ItemAffect(total=mean * n, weight=n, count=int(n), updated_at=NOW)


def cands(
    ids: list[str], rel: list[float], vecs: npt.NDArray[np.float32] | None = None
) -> Candidates:
    return Candidates(tuple(ids), np.array(rel, dtype=np.float32), vecs)


def run(c: Candidates, emotion: EmotionSummary | None = None, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    params = kw.pop("params", RankParams())
    items = rank(
        c,
        emotion,
        affect=kw.pop("affect", {}),
        popular=kw.pop("popular", []),
        seen=kw.pop("seen", set()),
        params=params,
        now_ms=NOW,
    )
    return [i.item_id for i in items]


pool = [f"i{n}" for n in range(30)]


@given(
    ids=st.lists(st.sampled_from(pool), max_size=40),
    seen=st.sets(st.sampled_from(pool)),
    popular=st.lists(st.sampled_from(pool), unique=True, max_size=30),
    variant=st.sampled_from(VARIANTS),
    top_k=st.integers(1, 15),
    lam=st.floats(0.0, 1.0),
    valence=st.floats(-1.0, 1.0),
    seed=st.integers(0, 1000),
)
def test_output_is_at_most_top_k_unique_and_never_seen(
    ids: list[str],
    seen: set[str],
    popular: list[str],
    variant: str,
    top_k: int,
    lam: float,
    valence: float,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    c = cands(ids, list(rng.uniform(-1, 1, len(ids))), vectors(len(ids), seed))
    affect = {i: reviewed(float(rng.uniform(-1, 1)), float(rng.uniform(0, 5))) for i in pool[::2]}
    pop = [(i, float(30 - n)) for n, i in enumerate(popular)]
    params = RankParams(variant=variant, top_k=top_k, mmr_lambda=lam)
    emotion = EmotionSummary(valence, 0.5, "joy", 2.0)
    items = rank(c, emotion, affect=affect, popular=pop, seen=seen, params=params, now_ms=NOW)
    got = [i.item_id for i in items]
    assert len(got) <= top_k
    assert len(set(got)) == len(got)
    assert not set(got) & seen
    scores = [i.score for i in items]
    assert scores == sorted(scores, reverse=True)  # shown in the order of the list, MMR or not
    cf = variant in ("popularity", "item_cf")  # item_cf without neighbour scores: popularity
    if cf or not ids:
        assert all(0.0 <= x <= 1.0 for x in scores)  # popularity on the scores' scale, no counts
    available = set(popular) - seen if cf else (set(ids) | set(popular)) - seen
    assert len(got) == min(top_k, len(available))


@given(st.integers(1, 40), st.integers(1, 50), st.integers(0, 1000))
def test_mmr_with_lambda_one_is_score_order(n: int, k: int, seed: int) -> None:
    scores = np.round(np.random.default_rng(seed).uniform(0, 1, n), 2)  # rounding makes ties
    assert mmr(scores, vectors(n, seed), k, 1.0) == list(np.argsort(-scores, kind="stable")[:k])


@given(st.integers(1, 30), st.integers(0, 1000))
def test_taste_only_and_neutral_default_at_lambda_one_follow_relevance(n: int, seed: int) -> None:
    rel = list(np.random.default_rng(seed).uniform(-1, 1, n))
    ids = [f"x{i}" for i in range(n)]
    c = cands(ids, rel, vectors(n, seed))
    expected = [ids[i] for i in np.argsort(-np.array(rel, dtype=np.float32), kind="stable")[:10]]
    affect = {i: reviewed(-1.0) for i in ids[::3]}
    assert run(c, SAD, affect=affect, params=RankParams(variant="taste_only")) == expected
    flat = RankParams(mmr_lambda=1.0, affect_weight=0.0, popularity_weight=0.0)
    assert run(c, SAD, affect=affect, params=flat) == expected


@given(
    st.integers(1, 80),
    st.integers(1, 20),
    st.floats(0.05, 0.95),
    st.floats(0.1, 3.0),
    st.integers(0, 1000),
)
def test_mmr_over_its_pool_picks_what_mmr_over_all_picks(
    n: int, k: int, lam: float, spread: float, seed: int
) -> None:
    """The pool leaves out only candidates MMR never picks (unit vectors), in any spread of
    scores, clustered vectors and ties included."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.uniform(0, spread, n), 3)
    v = vectors(n, seed)
    v[n // 2 :] = v[: n - n // 2] + rng.normal(scale=0.05, size=(n - n // 2, DIM))  # near twins
    v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    pool = mmr_pool(scores, k, lam)
    assert list(pool) == sorted(set(pool.tolist()))
    picked = [int(pool[i]) for i in mmr(scores[pool], v[pool], k, lam)]
    assert picked == mmr(scores, v, k, lam)


def test_the_pool_drops_low_scores_and_ranking_keeps_all_for_longer_vectors() -> None:
    scores = np.array([1.0, 0.99, 0.98, 0.2, 0.1])
    assert list(mmr_pool(scores, 2, 0.8)) == [0, 1, 2]
    assert list(mmr_pool(scores, 2, 1.0)) == [0, 1, 2, 3, 4]
    # Vectors of length 3: similarities reach 9, beyond the pool's bound. The low scorers far
    # from the picks then win MMR's trade, and rank must still consider them.
    v = np.zeros((5, DIM), np.float32)
    v[:3, 0] = 3.0
    v[3, 1] = 3.0
    v[4, 2] = 3.0
    c = cands(["a", "b", "c", "d", "e"], [1.0, 0.99, 0.98, 0.2, 0.1], v)
    flat = RankParams(mmr_lambda=0.8, affect_weight=0.0, popularity_weight=0.0, top_k=3)
    full = [["a", "b", "c", "d", "e"][i] for i in mmr(scores.astype(np.float64), v, 3, 0.8)]
    assert run(c, CALM, params=flat) == full
    assert full[1:] == ["d", "e"]


def test_mmr_skips_a_near_duplicate() -> None:
    v = vectors(3, 1)
    v[1] = v[0] + 0.01
    v[1] /= np.linalg.norm(v[1])
    scores = np.array([0.9, 0.89, 0.7])
    assert mmr(scores, v, 2, 1.0) == [0, 1]
    assert mmr(scores, v, 2, 0.5) == [0, 2]


def test_a_sad_user_is_steered_toward_comforting_items() -> None:
    # A mild base affect weight, so that the mood's part is what decides.
    p = RankParams(affect_weight=0.1)
    c = cands(["grim", "warm"], [0.72, 0.55])
    affect = {"grim": reviewed(-0.8), "warm": reviewed(0.9)}
    assert run(c, CALM, affect=affect, params=p)[0] == "grim"  # relevance leads, neutral mood
    assert run(c, None, affect=affect, params=p)[0] == "grim"  # and when the mood is unknown
    assert run(c, SAD, affect=affect, params=p)[0] == "warm"  # comfort outweighs some relevance
    untrusted = EmotionSummary(-0.9, 0.3, "sadness", weight=0.05)
    assert run(c, untrusted, affect=affect, params=p)[0] == "grim"  # one faint signal: not enough


def test_a_happy_user_explores_more() -> None:
    rel = np.array([0.8, 0.7], dtype=np.float32)
    zeros = np.zeros(2)
    params = RankParams()
    _, lam_calm = score_default(rel, zeros, zeros, CALM, params)
    _, lam_happy = score_default(rel, zeros, zeros, HAPPY, params)
    _, lam_sad = score_default(rel, zeros, zeros, SAD, params)
    assert lam_happy < lam_calm == lam_sad == params.mmr_lambda


def test_seed_formula_multiplies_evidence_relevance_and_sentiment() -> None:
    c = cands(["loved", "unknown", "hated", "irrelevant"], [0.5, 0.5, 0.5, -0.2])
    affect = {"loved": reviewed(0.8, 20), "hated": reviewed(-0.8, 20), "irrelevant": reviewed(1.0)}
    params = RankParams(variant="seed_formula")
    items = rank(c, SAD, affect=affect, popular=[], seen=(), params=params, now_ms=NOW)
    assert [i.item_id for i in items][:3] == ["loved", "unknown", "hated"]
    by_id = {i.item_id: i for i in items}
    w = 1 + np.log1p(20.0)
    assert by_id["loved"].score == pytest.approx(w * 0.5 * 0.9)
    assert by_id["unknown"].score == pytest.approx(1.0 * 0.5 * 0.5)
    assert by_id["irrelevant"].score == 0.0


def test_popularity_variant_and_cold_users_get_popular_items() -> None:
    popular = [("p1", 9.0), ("p2", 5.0), ("p3", 1.0)]
    c = cands(["x", "y"], [0.9, 0.8])
    params = RankParams(variant="popularity", top_k=2)
    assert run(c, None, popular=popular, seen={"p1"}, params=params) == ["p2", "p3"]
    assert run(Candidates(), CALM, popular=popular, params=RankParams(top_k=2)) == ["p1", "p2"]
    cold = rank(
        Candidates(), CALM, affect={}, popular=popular, seen=(), params=RankParams(), now_ms=NOW
    )
    assert [round(i.score, 3) for i in cold] == [1.0, round(math.log(6) / math.log(10), 3), 0.301]


def test_short_lists_are_filled_from_popularity_without_repeats() -> None:
    c = cands(["a", "b"], [0.9, 0.8])
    popular = [("a", 9.0), ("s", 8.0), ("p", 7.0), ("q", 6.0)]
    items = rank(
        c, CALM, affect={}, popular=popular, seen={"s"}, params=RankParams(top_k=4), now_ms=NOW
    )
    assert [i.item_id for i in items] == ["a", "b", "p", "q"]
    assert [i.relevance for i in items[2:]] == [0.0, 0.0]
    assert items[2].score <= items[1].score


def test_affect_lookup_may_be_a_function_and_results_serialise() -> None:
    c = cands(["a"], [0.5])
    items = rank(
        c, SAD, affect=lambda i: reviewed(0.5), popular=[], seen=(), params=RankParams(), now_ms=NOW
    )
    assert items[0].affect == pytest.approx(0.5 * 10 / 12)
    assert set(items[0].to_dict()) == {"item_id", "score", "relevance", "affect"}


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="ranker"):
        RankParams(variant="magic")
    with pytest.raises(ValueError, match="top_k"):
        RankParams(top_k=0)
    with pytest.raises(ValueError, match="vectors"):
        Candidates(("a",), np.zeros(1, dtype=np.float32), np.zeros((2, 3), dtype=np.float32))
