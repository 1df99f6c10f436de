"""The agents and timers: thin, each hands its stream to the pipeline or the processor."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from stream.contract.topics import INPUT_KINDS
from stream.settings import Settings
from stream.worker.board_feed import BoardFeed
from stream.worker.consumer import PlainLogConsumer
from stream.worker.pipeline import Pipeline
from stream.worker.serving import IndexHolder

log = logging.getLogger("moodstream.app")
INDEX_POLL_S = 30.0
LAG_POLL_S = 5.0
HOLE_POLL_S = 2.0  # how often the consumer's hole watch looks (Holes.looks, tail_looks)


def register(
    app: faust.App,
    settings: Settings,
    pipeline: Pipeline,
    items: Any,
    holder: IndexHolder | None,
    feed: BoardFeed,
) -> tuple[Any, Any]:
    """Add the user-events and item-events agents, their timers and the board feed."""
    processor = pipeline.processor
    input_topic = app.topic(
        *(settings.topic(k) for k in INPUT_KINDS),
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    user_events = app.agent(input_topic, name="user-events")(pipeline.run)

    async def item_updates(stream: faust.StreamT) -> None:
        # The board is fed from the table's changelog on every worker (BoardFeed), not here.
        async for event in stream.events():
            # One message per partition per flush ({"items": [...]}); a single item's value
            # (what earlier versions sent) is folded the same way.
            for value in event.value.get("items", [event.value]):
                dropped = processor.fold_item(value, items, to_board=False)
                if dropped:
                    pipeline.metrics.item_duplicates.inc(dropped)

    item_agent = app.agent(pipeline.outputs.item_events, name="item-events")(item_updates)

    async def board_feed() -> None:  # a plain function: Faust hands tasks with arguments the app
        await feed.run()

    app.task(board_feed)

    app.timer(max(settings.recommend_interval_ms, 50) / 1000.0)(pipeline.flush_coalesced)
    _watch_lag(app, pipeline, {settings.topic(k) for k in INPUT_KINDS})
    _watch_holes(app, pipeline)
    if holder is not None:
        _watch_index(app, pipeline, feed, holder)
    return user_events, item_agent


def _watch_lag(app: faust.App, pipeline: Pipeline, inputs: set[str]) -> None:
    async def measure_lag() -> None:
        """Consumer lag per owned input partition (high-water mark minus read position): the
        alert that says the worker falls behind; partitions it no longer owns are dropped."""
        gauge = pipeline.metrics.lag
        owned = set()
        for tp in app.consumer.assignment():
            if tp.topic not in inputs:
                continue
            try:
                highwater = app.consumer.highwater(tp)
                position = await app.consumer.position(tp)
            except Exception:  # a partition being revoked right now: measured next time
                continue
            if highwater is None or position is None or highwater < 0:
                continue
            gauge.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
            owned.add((tp.topic, str(tp.partition)))
        for labels in list(_label_sets(gauge)):
            if labels not in owned:
                gauge.remove(*labels)

    app.timer(LAG_POLL_S)(measure_lag)


def _watch_holes(app: faust.App, pipeline: Pipeline) -> None:
    async def rewind_holes() -> None:
        """Fetch again what a rebalance race left unread (``stream.worker.consumer``)."""
        consumer = app.consumer
        if isinstance(consumer, PlainLogConsumer):
            await consumer.restart_stalled_fetcher()
            await consumer.rewind_holes()
            pipeline.metrics.refetches.set(consumer.holes.refetched)
            pipeline.metrics.put_back.set(consumer.put_back)

    app.timer(HOLE_POLL_S)(rewind_holes)


def _label_sets(gauge: Any) -> list[tuple[str, str]]:
    return [(s.labels["topic"], s.labels["partition"]) for m in gauge.collect() for s in m.samples]


def _watch_index(app: faust.App, pipeline: Pipeline, feed: BoardFeed, holder: IndexHolder) -> None:
    async def reload_index() -> None:
        """Swap in a newer index version written into the same folder (atomic rename)."""
        if await asyncio.get_running_loop().run_in_executor(None, holder.reload):
            pipeline.processor.swap_index(holder.index, feed.latest)
            pipeline.metrics.index_items.set(len(holder.index.ids()))
            log.info("now serving index %s", holder.version)
        elif holder.last_error:
            log.warning("index reload failed: %s", holder.last_error)

    app.timer(INDEX_POLL_S)(reload_index)
