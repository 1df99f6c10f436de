"""Ranking many users at once must give each exactly what ranking them one by one gives."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.affect import ItemAffect
from stream.core.board import ItemBoard
from stream.core.emotion import EmotionSummary
from stream.core.popularity import Popularity
from stream.core.rank import Candidates, RankedItem, RankParams, rank
from stream.core.rank_batch import rank_many
from stream.core.state import Seen

NOW = 1_700_000_000_000
IDS = [f"item{i:02d}" for i in range(40)]
DIM = 8


def board_for(rng: np.random.Generator) -> ItemBoard:
    board = ItemBoard(IDS)
    for item_id in IDS:
        if rng.random() < 0.8:  # some items never reviewed nor clicked
            affect = ItemAffect(
                float(rng.uniform(-5, 5)), float(rng.uniform(0.1, 5)), 3, NOW - 3_600_000
            )
            pop = Popularity(float(rng.uniform(0, 50)), 5, NOW - int(rng.integers(0, 10**9)))
            board.put(item_id, affect, pop)
    return board


def unit(rng: np.random.Generator, n: int, length: float = 1.0) -> npt.NDArray[np.float32]:
    v = rng.normal(size=(n, DIM))
    return (length * v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def user(
    rng: np.random.Generator, vectors: dict[str, npt.NDArray[np.float32]], kind: int
) -> tuple[Candidates, EmotionSummary | None, Seen | set[str], dict[str, float] | None]:
    n = int(rng.integers(0, 30))
    ids = tuple(str(i) for i in rng.choice(IDS, size=n))  # duplicates on purpose
    rel = np.round(rng.uniform(-1, 1, n), 2).astype(np.float32)  # rounding makes ties
    if kind == 0:  # vectors fetched from the "index"
        cands = Candidates(ids, rel, fetch=lambda xs: np.stack([vectors[x] for x in xs]))
    elif kind == 1:  # vectors given, some of length 2 (the pool's bound does not hold)
        length = 2.0 if rng.random() < 0.3 else 1.0
        cands = Candidates(ids, rel, unit(rng, n, length) if n else None)
    else:  # no vectors: score order
        cands = Candidates(ids, rel)
    mood = None
    if rng.random() < 0.8:
        mood = EmotionSummary(float(rng.uniform(-1, 1)), 0.3, "joy", float(rng.uniform(0, 5)))
    seen: Seen | set[str] = Seen()
    for item_id in rng.choice(IDS, size=int(rng.integers(0, 6))):
        seen = seen.add(str(item_id), 64)  # type: ignore[union-attr]
    if rng.random() < 0.1:
        seen = set(rng.choice(IDS, size=3).tolist())  # no digests: the per-user path
    nb = None
    if rng.random() < 0.6:
        nb = {str(i): float(rng.uniform(0, 1)) for i in rng.choice(IDS, size=8)}
    return cands, mood, seen, nb


def as_tuples(items: list[RankedItem]) -> list[tuple[str, float, float, float]]:
    return [(i.item_id, i.score, i.relevance, i.affect) for i in items]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    users=st.integers(0, 12),
    variant=st.sampled_from(["default", "default", "taste_only"]),
    lam=st.sampled_from([0.8, 0.5, 1.0]),
    neighbour_weight=st.sampled_from([1.0, 0.0]),
)
def test_rank_many_gives_each_user_what_rank_gives(
    seed: int, users: int, variant: str, lam: float, neighbour_weight: float
) -> None:
    rng = np.random.default_rng(seed)
    board = board_for(rng)
    vectors = dict(zip(IDS, unit(rng, len(IDS)), strict=True))
    batch = [user(rng, vectors, int(rng.integers(0, 3))) for _ in range(users)]
    params = RankParams(variant=variant, mmr_lambda=lam, neighbour_weight=neighbour_weight, top_k=8)
    popular = board.popular(15, NOW, 7 * 86400)
    want = [
        rank(c, m, affect=board, popular=popular, seen=s, params=params, now_ms=NOW, neighbour=nb)
        for c, m, s, nb in batch
    ]
    got = rank_many(
        [c for c, _, _, _ in batch],
        [m for _, m, _, _ in batch],
        board=board,
        popular=popular,
        seen=[s for _, _, s, _ in batch],
        params=params,
        now_ms=NOW,
        neighbours=[nb for _, _, _, nb in batch],
    )
    assert [as_tuples(g) for g in got] == [as_tuples(w) for w in want]


def test_rank_many_keeps_every_candidate_for_vectors_longer_than_unit() -> None:
    """Length-3 vectors: similarities up to 9, beyond the pool's bound; the low scorers far from
    the picks win MMR's trade, in the batch as alone."""
    board = ItemBoard(IDS)
    v = np.zeros((5, DIM), np.float32)
    v[:3, 0] = 3.0
    v[3, 1] = 3.0
    v[4, 2] = 3.0
    far = Candidates(tuple(IDS[:5]), np.array([1.0, 0.99, 0.98, 0.2, 0.1], np.float32), v)
    plain = Candidates(tuple(IDS[5:9]), np.array([0.5, 0.4, 0.3, 0.2], np.float32), v[:4] / 3)
    mood = EmotionSummary(0.0, 0.2, "neutral", 5.0)
    params = RankParams(affect_weight=0.0, popularity_weight=0.0, top_k=3)
    got = rank_many(
        [far, plain],
        [mood, mood],
        board=board,
        popular=[],
        seen=[Seen(), Seen()],
        params=params,
        now_ms=NOW,
        neighbours=[None, None],
    )
    alone = [
        rank(c, mood, affect=board, popular=[], seen=Seen(), params=params, now_ms=NOW)
        for c in (far, plain)
    ]
    assert [as_tuples(g) for g in got] == [as_tuples(a) for a in alone]
    assert [i.item_id for i in got[0]][1:] == [IDS[3], IDS[4]]
