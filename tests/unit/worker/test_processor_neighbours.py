"""The processor carries pair evidence in the item events and ranks with the neighbours."""

from __future__ import annotations

import dataclasses
from typing import Any

from stream.core.rank import RankParams
from stream.worker.processor import Processor, load_user
from tests.unit.worker.test_processor import click, fold, processor  # noqa: F401


def test_pairs_travel_in_item_events_and_feed_the_board(processor: Processor) -> None:  # noqa: F811
    p = Processor(processor.settings, processor.model, processor.index)
    users: dict[str, Any] = {}
    items: dict[str, Any] = {}
    batch = [
        click("n1", "nb-a", "item-1", "purchase", 1_000),
        click("n2", "nb-a", "item-2", "purchase", 2_000),
        click("n3", "nb-a", "item-3", "view", 3_000),  # a short view: no engagement
    ]
    out = fold(p, batch, users, items)
    values = dict(out.item_events)
    assert values["item-1"]["pairs"] == [["item-2", 1.0, 2_000]]
    assert "pairs" not in values["item-2"] and "pairs" not in values["item-3"]
    assert "user_id" not in str(values)  # no user id in the item events
    nb = p.board.neighbours_of("item-1")
    assert nb is not None and nb.scores == (("item-2", 1.0),)
    assert items["item-1"]["nb"]["n"] == [["item-2", 1.0]]
    state, _ = load_user(users["nb-a"])
    assert [r.item_id for r in state.recent.positives] == ["item-2", "item-1"]
    # the board is rebuilt from the table with the neighbours
    p.reload_items(items)
    assert p.board.neighbours_of("item-1") == nb

    # another user who bought item-1 gets item-2 from the neighbour ranker
    fold(p, [click("n4", "nb-b", "item-1", "purchase", 4_000)], users, items)
    p.rank_params = dataclasses.replace(p.rank_params, variant="item_cf")
    rec = p.recommend("nb-b", "n4", 4_000, users, 4_000)
    assert rec is not None and rec["items"][0]["item_id"] == "item-2"
    p.rank_params = RankParams.from_settings(p.settings, neighbour_weight=5.0)
    rec = p.recommend("nb-b", "n4", 4_000, users, 4_000)
    assert rec is not None and rec["items"][0]["item_id"] == "item-2"
