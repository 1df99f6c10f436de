"""Every worker's complete item board: the whole ``items`` changelog, read into memory.

The item-keyed agent folds item state for the partitions this worker owns; ranking needs every
item's. So each worker reads every partition of the ``items`` table's changelog, outside the
consumer group (no offsets committed), from the beginning and then tailing it, into its board.
Faust's GlobalTable is not used: it stalls with several workers (faust-streaming#283).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from stream.adapters.kafka import make_consumer
from stream.core.state import ItemState
from stream.settings import Settings
from stream.worker.metrics import Metrics
from stream.worker.processor import Processor

log = logging.getLogger("moodstream.board")
RETRY_S = 1.0


class BoardFeed:
    """Tails the items changelog into ``processor.board``; ``latest`` keeps every record, so an
    index swap can rebuild the new board at once."""

    def __init__(
        self, settings: Settings, topic: str, processor: Processor, metrics: Metrics
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.processor = processor
        self.metrics = metrics
        self.latest: dict[str, Any] = {}
        self.lag: int | None = None  # None until the first fetch says where the ends are
        self.caught_up = False
        self._next: dict[Any, int] = {}

    def status(self) -> dict[str, Any]:
        return {"items": len(self.latest), "lag": self.lag, "caught_up": self.caught_up}

    async def run(self) -> None:
        """The app task: read forever, reconnecting after errors."""
        while True:
            try:
                await self._read()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a broker hiccup must not leave the board frozen
                log.warning("board feed failed, retrying: %r", exc)
                await asyncio.sleep(RETRY_S)

    async def _read(self) -> None:
        from aiokafka import TopicPartition

        consumer = make_consumer(
            self.settings, enable_auto_commit=False, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        try:
            while self.topic not in await consumer.topics():  # Faust creates it at start
                await asyncio.sleep(RETRY_S)
            # The table's changelog has the app's partition count (co-partitioned with inputs).
            parts = range(self.settings.partitions)
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            for tp in tps:
                if tp in self._next:
                    consumer.seek(tp, self._next[tp])  # after a reconnect: go on
                else:
                    await consumer.seek_to_beginning(tp)
            ends = await consumer.end_offsets(tps)
            while True:
                batch = await consumer.getmany(timeout_ms=200, max_records=5000)
                now = int(time.time() * 1000)
                for tp, messages in batch.items():
                    for m in messages:
                        self.apply(m.key, m.value, now)
                    if messages:
                        self._next[tp] = messages[-1].offset + 1
                self._measure(consumer, tps, ends)
        finally:
            await consumer.stop()

    def apply(self, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        """One changelog record onto the board (a tombstone clears the item)."""
        if key is None:
            return
        try:
            item_id = str(json.loads(key))
            raw = None if value is None else json.loads(value)
            state = ItemState() if raw is None else ItemState.from_dict(raw)
        except (ValueError, KeyError, TypeError) as exc:  # not ours: skip it, keep reading
            log.warning("unreadable items changelog record %r: %r", key, exc)
            return
        if raw is None:
            self.latest.pop(item_id, None)
        else:
            self.latest[item_id] = raw
            at = raw.get("at")
            if at is not None and self.caught_up:
                self.metrics.board_freshness.observe(max(now_ms - int(at), 0) / 1000.0)
        self.processor.board.put(item_id, state.affect, state.popularity, state.neighbours)

    def _measure(self, consumer: Any, tps: list[Any], ends: dict[Any, int]) -> None:
        lag = 0
        for tp in tps:
            high = consumer.highwater(tp)
            end = ends.get(tp, 0) if high is None else high
            lag += max(end - self._next.get(tp, 0), 0)
        if not self.caught_up and all(self._next.get(tp, 0) >= ends.get(tp, 0) for tp in tps):
            self.caught_up = True  # the backlog is read: from now on records are fresh
            log.info("item board caught up: %d items", len(self.latest))
        self.lag = lag
        self.metrics.board_lag.set(lag)
        self.metrics.board_items.set(len(self.latest))
