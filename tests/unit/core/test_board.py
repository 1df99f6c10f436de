"""The item board must answer exactly what the per-item folds and lookups answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.core.affect import ItemAffect, affect_at
from stream.core.board import ItemBoard, decay_factors
from stream.core.decay import decay_factor
from stream.core.emotion import EmotionSummary
from stream.core.popularity import Popularity, top_popular
from stream.core.rank import Candidates, RankParams, rank
from stream.core.state import Seen

NOW = 1_700_000_000_000
IDS = [f"item{i:02d}" for i in range(24)]
DAY_MS = 86_400_000

times = st.integers(NOW - 60 * DAY_MS, NOW + DAY_MS)
affects = st.builds(
    ItemAffect,
    total=st.floats(-20, 20),
    weight=st.floats(0.001, 20),
    count=st.integers(1, 50),
    updated_at=times,
)
pops = st.builds(Popularity, score=st.floats(0, 100), count=st.integers(1, 100), updated_at=times)
boards = st.dictionaries(st.sampled_from(IDS), st.tuples(affects, pops), max_size=len(IDS))


def filled(states: dict[str, tuple[ItemAffect, Popularity]]) -> ItemBoard:
    board = ItemBoard(IDS)
    for item_id, (affect, pop) in states.items():
        assert board.put(item_id, affect, pop)
    return board


@given(states=boards, n=st.integers(0, 30), half_life_d=st.sampled_from([0.5, 7.0, 90.0]))
def test_popular_is_top_popular(
    states: dict[str, tuple[ItemAffect, Popularity]], n: int, half_life_d: float
) -> None:
    hl = half_life_d * 86400
    want = top_popular({k: p for k, (_, p) in states.items()}, n, NOW, hl)
    got = filled(states).popular(n, NOW, hl)
    assert [i for i, _ in got] == [i for i, _ in want]
    assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-12)


@given(states=boards, half_life_d=st.sampled_from([1.0, 90.0]))
def test_decayed_affect_is_affect_at_and_unknown_is_zero(
    states: dict[str, tuple[ItemAffect, Popularity]], half_life_d: float
) -> None:
    hl = half_life_d * 86400
    board = filled(states)
    asked = [*IDS, "not-indexed"]
    total, weight = board.decayed_affect(asked, NOW, hl)
    for i, item_id in enumerate(asked):
        if item_id not in states:
            assert total[i] == weight[i] == 0.0
            continue
        want = affect_at(states[item_id][0], NOW, hl)
        assert total[i] == pytest.approx(want.total, rel=1e-12, abs=1e-300)
        assert weight[i] == pytest.approx(want.weight, rel=1e-12, abs=1e-300)


@given(states=boards)
def test_get_round_trips_and_unknown_ids_are_refused(
    states: dict[str, tuple[ItemAffect, Popularity]],
) -> None:
    board = filled(states)
    for item_id in IDS:
        assert board.get(item_id) == states.get(item_id)
        assert board.affect(item_id) == (states[item_id][0] if item_id in states else None)
    assert not board.put("elsewhere", ItemAffect(), Popularity())
    assert "elsewhere" not in board and board.get("elsewhere") is None
    board.clear()
    assert all(board.get(i) is None for i in IDS) and board.popular(5, NOW, 86400) == []


@pytest.mark.parametrize("hl", [0.0, 1.0, math.inf])
def test_decay_factors_match_the_scalar_rule(hl: float) -> None:
    elapsed = np.array([-5.0, 0.0, 1.0, 3_600_000.0, 1e12])
    assert decay_factors(elapsed, hl).tolist() == [decay_factor(e, hl) for e in elapsed]


@given(
    states=boards,
    picks=st.lists(st.sampled_from(IDS), min_size=1, max_size=40),
    seen_ids=st.lists(st.sampled_from(IDS), max_size=6),
    valence=st.floats(-1, 1),
    variant=st.sampled_from(["default", "seed_formula", "taste_only"]),
)
def test_ranking_from_a_board_equals_ranking_from_item_lookups(
    states: dict[str, tuple[ItemAffect, Popularity]],
    picks: list[str],
    seen_ids: list[str],
    valence: float,
    variant: str,
) -> None:
    """The board's array path (rows, digests) picks exactly what the per-item path picks,
    duplicates and seen items included."""
    rng = np.random.default_rng(len(picks))
    vecs = rng.normal(size=(len(picks), 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    cands = Candidates(tuple(picks), rng.uniform(-1, 1, len(picks)).astype(np.float32), vecs)
    mood = EmotionSummary(valence=valence, arousal=0.3, dominant="neutral", weight=3.0)
    board = filled(states)
    seen = Seen()
    for item_id in seen_ids:
        seen = seen.add(item_id, 64)
    popular = board.popular(20, NOW, 7 * 86400)
    kw = dict(popular=popular, params=RankParams(variant=variant), now_ms=NOW)
    by_board = rank(cands, mood, affect=board, seen=seen, **kw)  # type: ignore[arg-type]
    affects = {k: a for k, (a, _) in states.items()}
    by_map = rank(cands, mood, affect=affects, seen=set(seen_ids), **kw)  # type: ignore[arg-type]
    assert [r.item_id for r in by_board] == [r.item_id for r in by_map]
    assert [r.score for r in by_board] == pytest.approx([r.score for r in by_map], rel=1e-9)
    assert not {r.item_id for r in by_board} & set(seen_ids)
