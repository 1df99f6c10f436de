"""The board feed's handling of changelog records, without a broker."""

from __future__ import annotations

import json
from typing import Any

from stream.core.affect import ItemAffect
from stream.core.popularity import Popularity
from stream.core.state import ItemState
from stream.settings import Settings
from stream.worker.board_feed import BoardFeed
from stream.worker.metrics import Metrics


class _Board:
    def __init__(self) -> None:
        self.put_calls: dict[str, tuple[ItemAffect, Popularity]] = {}

    def put(
        self, item_id: str, affect: ItemAffect, pop: Popularity, neighbours: object = None
    ) -> bool:
        self.put_calls[item_id] = (affect, pop)
        return True


class _Processor:
    def __init__(self) -> None:
        self.board = _Board()


def test_records_and_tombstones_reach_the_board_and_freshness_is_observed() -> None:
    metrics = Metrics()
    processor: Any = _Processor()
    feed = BoardFeed(Settings(), "app-items-changelog", processor, metrics)
    state = ItemState(ItemAffect(1.5, 2.0, 2, 1000), Popularity(3.0, 3, 1000))
    record = {**state.to_dict(), "hw": {"reviews:0": 4}, "at": 10_000}
    feed.apply(json.dumps("item-1").encode(), json.dumps(record).encode(), 10_250)
    assert processor.board.put_calls["item-1"] == (state.affect, state.popularity)
    assert feed.latest["item-1"] == record
    # Not caught up yet: the backlog is not "fresh" and is not observed.
    counts = {s.name: s.value for s in metrics.board_freshness.collect()[0].samples}
    assert counts["moodstream_board_freshness_seconds_count"] == 0
    feed.caught_up = True
    feed.apply(json.dumps("item-1").encode(), json.dumps(record).encode(), 10_250)
    sums = {s.name: s.value for s in metrics.board_freshness.collect()[0].samples}
    assert sums["moodstream_board_freshness_seconds_count"] == 1
    assert abs(sums["moodstream_board_freshness_seconds_sum"] - 0.25) < 1e-9
    feed.apply(json.dumps("item-1").encode(), None, 10_300)
    assert "item-1" not in feed.latest
    assert processor.board.put_calls["item-1"] == (ItemAffect(), Popularity())
    assert feed.status() == {"items": 0, "lag": None, "caught_up": True}
