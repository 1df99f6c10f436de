"""A flush's item values go out one message per partition, each item on its own partition."""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import DefaultPartitioner

from stream.worker.item_events import item_batches


def value(item_id: str, events: int, pairs: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"item_id": item_id, "events": [{"kind": "clicks"}] * events}
    if pairs:
        out["pairs"] = [["x", 1.0, 0]] * pairs
    return out


def test_each_item_goes_to_the_partition_kafka_gives_its_key_and_nothing_is_lost() -> None:
    values = {f"item-{i}": value(f"item-{i}", 1 + i % 3, i % 2) for i in range(200)}
    batches = item_batches(values, 4)
    kafka = DefaultPartitioner()
    sent = [v["item_id"] for _, batch in batches for v in batch]
    assert sorted(sent) == sorted(values)  # every value once
    for partition, batch in batches:
        for v in batch:
            assert partition == kafka(v["item_id"].encode(), [0, 1, 2, 3], [0, 1, 2, 3])
    assert len(batches) == 4  # one message per partition when they fit


def test_a_large_flush_is_cut_at_the_delta_limit_without_splitting_an_item() -> None:
    values = {f"item-{i}": value(f"item-{i}", 30, 5) for i in range(40)}
    batches = item_batches(values, 1, limit=100)
    sizes = [sum(len(v["events"]) + len(v.get("pairs", ())) for v in b) for _, b in batches]
    assert all(s <= 100 for s in sizes) and sum(sizes) == 40 * 35
    assert len(batches) == 20  # two 35-delta items per message
    huge = item_batches({"big": value("big", 500)}, 2, limit=100)
    assert [len(b) for _, b in huge] == [1]  # one item's value is never split
