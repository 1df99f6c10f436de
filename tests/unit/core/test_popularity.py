from __future__ import annotations

import json

import pytest

from stream.core.popularity import (
    PopObs,
    Popularity,
    PopularityWeights,
    fold_popularity,
    top_popular,
)

HL = 7 * 86400.0
T0 = 1_700_000_000_000
DAY = 86_400_000


def counted(*events: tuple[int, float]) -> Popularity:
    state = Popularity()
    for ts, w in events:
        state, _ = fold_popularity(state, PopObs(ts, w), HL)
    return state


def test_recent_interactions_outweigh_old_ones() -> None:
    items = {
        "old": counted(*[(T0, 1.0)] * 4),
        "new": counted((T0 + 14 * DAY, 1.0), (T0 + 14 * DAY, 1.0)),
        "none": Popularity(),
    }
    now = T0 + 14 * DAY
    top = top_popular(items, 5, now, HL)
    assert [i for i, _ in top] == ["new", "old"]  # 2 now > 4 two half-lives ago (= 1)
    assert top[1][1] == pytest.approx(1.0)
    assert top_popular(items, 5, now, HL, exclude={"new"})[0][0] == "old"
    assert len(top_popular(items, 1, now, HL)) == 1


def test_ties_break_by_id_and_zero_weights_do_not_count() -> None:
    items = {"b": counted((T0, 1.0)), "a": counted((T0, 1.0))}
    assert [i for i, _ in top_popular(items.items(), 2, T0, HL)] == ["a", "b"]
    state, _ = fold_popularity(Popularity(), PopObs(T0, 0.0), HL)
    assert state == Popularity()


def test_weights_per_kind_and_round_trip() -> None:
    w = PopularityWeights()
    assert w.of("purchase") > w.of("click") > w.of("view") > w.of("skip") == 0.0
    assert w.of("unknown") == 0.0
    state = counted((T0, 1.0), (T0 + DAY, 0.5))
    assert Popularity.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert state.count == 2
