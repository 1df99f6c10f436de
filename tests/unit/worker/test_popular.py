"""A new system's first cold users get the popular items as soon as any exist, not an empty
list for the first second (an empty popular list is not cached like a full one)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from stream.adapters.index import FaissItemIndex, build_index
from stream.adapters.sentiment import OnnxSentimentModel
from stream.contract.records import Chat, Click
from stream.settings import Settings
from stream.worker.processor import Decoded, Processor
from tests.fixtures.tiny_model import build_tiny_model

ITEMS = [f"item-{i}" for i in range(20)]


@pytest.fixture
def processor(tmp_path_factory: pytest.TempPathFactory) -> Processor:
    root = tmp_path_factory.mktemp("popular")
    model_dir = build_tiny_model(root / "model")
    vectors = np.random.default_rng(0).normal(size=(len(ITEMS), 384)).astype(np.float32)
    build_index(ITEMS, vectors, root / "index", "sha")
    settings = Settings(model_dir=str(model_dir), index_dir=str(root / "index"))
    return Processor(
        settings, OnnxSentimentModel.from_settings(settings), FaissItemIndex.load(root / "index")
    )


def test_cold_users_get_popular_items_once_the_first_item_events_are_folded(
    processor: Processor,
) -> None:
    users: dict[str, Any] = {}
    items: dict[str, Any] = {}
    now = int(time.time() * 1000)
    chat = Decoded("chats", Chat(event_id="c1", user_id="cold", text="hi", session_id="s", ts=now))
    processor.fold_batch([chat], processor.score([chat]), users, now_ms=now)
    first = processor.recommend("cold", "c1", now, users, now)
    assert first is not None and first["items"] == []  # nothing is popular yet: truly nothing

    buy = Decoded(
        "clicks", Click(event_id="k1", user_id="buyer", item_id="item-3", action="purchase", ts=now)
    )
    out = processor.fold_batch([buy], None, users, now_ms=now)
    for _, value in out.item_events:
        processor.fold_item(value, items)
    later = processor.recommend("cold", "c1", now, users, now + 100)  # well within a second
    assert later is not None
    assert [i["item_id"] for i in later["items"]] == ["item-3"]
    assert later["items"][0]["score"] == pytest.approx(1.0)  # log-scaled popularity, top item
