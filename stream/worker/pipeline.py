"""The user-events pipeline: decode a batch, score its pieces on threads, fold them in order.

The model scores batch n+1 while the event loop folds batch n. Item deltas of the folded pieces
are aggregated per item and flushed at most every ``item_flush_ms``: first the deltas (awaited
until the broker has them), then the held-back user records, then the acknowledgements. So a
user record on the changelog implies its events' deltas reached the item topic, and a crash at
any point redelivers the events whose deltas may be missing; the item side drops the deltas it
already applied (by source partition and offset, ``Processor.fold_item``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import faust

from stream.contract.decoding import check_key, dead_letter, decode
from stream.core.coalesce import Coalescer
from stream.errors import DeadLetter
from stream.settings import Settings
from stream.worker.item_events import item_batches
from stream.worker.metrics import Metrics
from stream.worker.processor import Decoded, Processor, Request

log = logging.getLogger("moodstream.pipeline")
PIECES_AHEAD = 4  # scored pieces that may wait to be folded: bounds memory and latency


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class Piece:
    """Part of a batch: its events, their scores (a future), and dead letters to acknowledge."""

    chunk: list[Decoded]
    scores: asyncio.Future[Any]
    acks: list[Any]


@dataclass(frozen=True)
class Outputs:
    """The topics the pipeline sends to."""

    recommendations: faust.TopicT
    deadletters: faust.TopicT
    item_events: faust.TopicT


_GONE = object()  # a held-back deletion


class HeldUsers(MutableMapping[Any, Any]):
    """The ``users`` table with writes held back until the next item flush.

    Reads see the held writes first. Each write remembers the event Faust must be told it
    belongs to (its partition's store and changelog) and ``apply`` replays them in order."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.held: dict[Any, tuple[Any, Any]] = {}

    def __getitem__(self, key: Any) -> Any:
        got = self.held.get(key)
        if got is None:
            return self.table[key]
        if got[0] is _GONE:
            raise KeyError(key)
        return got[0]

    def get(self, key: Any, default: Any = None) -> Any:
        got = self.held.get(key)
        if got is None:
            return self.table.get(key, default)
        return default if got[0] is _GONE else got[0]

    def __contains__(self, key: object) -> bool:
        got = self.held.get(key)
        if got is None:
            return key in self.table
        return got[0] is not _GONE

    def __setitem__(self, key: Any, value: Any) -> None:
        from faust.streams import _current_event

        self.held.pop(key, None)  # keep the order of the last write
        self.held[key] = (value, _current_event.get(None))

    def __delitem__(self, key: Any) -> None:
        from faust.streams import _current_event

        self.held.pop(key, None)
        self.held[key] = (_GONE, _current_event.get(None))

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("held users are not iterated")

    def __len__(self) -> int:
        raise TypeError("held users are not counted")

    def apply(self) -> int:
        """Write the held records to the table (and so to its changelog); how many."""
        from faust.streams import _current_event

        held, self.held = self.held, {}
        for key, (value, event) in held.items():
            _current_event.set(event)
            if value is _GONE:
                if key in self.table:
                    del self.table[key]
            else:
                self.table[key] = value
        _current_event.set(None)
        return len(held)


class Pipeline:
    """Everything the user-events agent does between taking a batch and acknowledging it."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        processor: Processor,
        metrics: Metrics,
        outputs: Outputs,
        users: Any,
        erasures: Any,
        kind_of: dict[str, str],
    ) -> None:
        self.app = app
        self.settings = settings
        self.processor = processor
        self.metrics = metrics
        self.outputs = outputs
        self.table = users
        self.users = HeldUsers(users)
        self.erasures = erasures
        self.kind_of = kind_of
        self.coalescer = Coalescer(settings.recommend_interval_ms)
        # Scoring threads take pieces in the order the agent hands them over; the folding task
        # awaits their scores in that order. Two threads: while one waits for the GIL between
        # ONNX Runtime calls, the other computes (mixed traffic: 329-348 texts/s with 2, 263-266
        # with 1).
        self.scorer = ThreadPoolExecutor(
            max_workers=max(1, settings.score_threads), thread_name_prefix="moodstream-score"
        )
        self._crashing: set[asyncio.Future[None]] = set()
        # Item deltas folded but not yet sent (item id -> value), and what waits on them.
        self.pending_items: dict[str, dict[str, Any]] = {}
        self.pending_acks: list[Any] = []

    async def run(self, stream: faust.StreamT) -> None:
        """The agent: decode a batch, hand its pieces to the scoring threads, go on."""
        loop = asyncio.get_running_loop()
        wait_s = self.settings.batch_wait_ms / 1000
        pieces: asyncio.Queue[Piece] = asyncio.Queue(maxsize=PIECES_AHEAD)
        folder = asyncio.ensure_future(self.fold_pieces(stream, pieces))
        folder.add_done_callback(self.crash_on_failure)
        try:
            async for batch in stream.noack_take(self.settings.batch_events, wait_s):  # type: ignore[attr-defined]
                self.metrics.batch.observe(len(batch))
                decoded, dead = await self.decode_batch(batch)
                chunks = self.processor.chunks(decoded) or [[]]
                for i, chunk in enumerate(chunks):
                    scores = loop.run_in_executor(self.scorer, self.processor.score, chunk)
                    await push(pieces, Piece(chunk, scores, dead if i == 0 else []), folder)
        finally:
            folder.cancel()

    async def decode_batch(self, batch: list[Any]) -> tuple[list[Decoded], list[Any]]:
        """Valid new events, and the events to acknowledge without folding: those that went
        to the dead-letter topic, and texts already folded (redeliveries: never scored)."""
        decoded: list[Decoded] = []
        dead: list[Any] = []
        for event in batch:
            kind = self.kind_of.get(event.message.topic, "")
            try:
                record = decode(
                    kind,
                    event.message.value,
                    max_value_bytes=self.settings.max_value_bytes,
                    max_text_bytes=self.settings.max_text_bytes,
                )
                check_key(record, event.message.key)
            except DeadLetter as exc:
                await self.send_dead(exc, event)
                dead.append(event)
                continue
            d = Decoded(kind, record, event)
            if kind in ("reviews", "chats"):
                enter(d)
                if self.processor.already_folded(d, self.users):
                    self.metrics.duplicates.inc()
                    dead.append(event)
                    continue
            decoded.append(d)
        leave()
        return decoded, dead

    def crash_on_failure(self, task: asyncio.Future[None]) -> None:
        """A failed fold stops the worker even while no new batch arrives to notice it; its
        unacknowledged events go to the successor."""
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("folding task failed: %r", error)
            crash = asyncio.ensure_future(self.app.crash(error))  # type: ignore[arg-type]
            self._crashing.add(crash)  # a reference, so the task is not collected mid-way
            crash.add_done_callback(self._crashing.discard)

    async def fold_pieces(self, stream: faust.StreamT, pieces: asyncio.Queue[Piece]) -> None:
        loop = asyncio.get_running_loop()
        every_s = self.settings.item_flush_ms / 1000
        due: float | None = None  # when the held deltas must go out
        # One get() outlives the timeouts: asyncio.wait_for could drop a piece that arrives
        # just as it times out (Python 3.11), and a piece never acknowledged stalls a rebalance.
        getter: asyncio.Future[Piece] | None = None
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(pieces.get())
                wait = None if due is None else max(due - loop.time(), 0.0)
                await asyncio.wait({getter}, timeout=wait)
                if not getter.done():
                    await self.flush_items(stream)
                    due = None
                    continue
                piece, getter = getter.result(), None
                due = await self.fold_piece(stream, piece, due, every_s)
        finally:
            if getter is not None:
                getter.cancel()

    async def fold_piece(
        self, stream: faust.StreamT, piece: Piece, due: float | None, every_s: float
    ) -> float | None:
        """Fold one piece; flush when the deltas are due; when the next flush is due."""
        clock = time.perf_counter
        loop = asyncio.get_running_loop()
        began = clock()
        scores = await piece.scores
        scored = clock()
        if piece.chunk:
            await self.fold_and_send(piece.chunk, scores)
        self.metrics.score_wait.inc(scored - began)
        self.metrics.fold_time.inc(clock() - scored)
        self.pending_acks.extend(piece.acks)
        self.pending_acks.extend(d.source for d in piece.chunk)
        if due is None:
            due = loop.time() + every_s
        if loop.time() >= due:
            await self.flush_items(stream)
            due = None
        return due

    async def flush_items(self, stream: Any) -> None:
        """Send the held item deltas (one value per item) and wait until the broker has them;
        then write the held user records and acknowledge the events folded so far."""
        values, self.pending_items = self.pending_items, {}
        sent_at = now_ms()
        deliveries = []
        for value in values.values():
            value["sent"] = sent_at
        for partition, batch in item_batches(values, self.settings.partitions):
            key = batch[0]["item_id"].encode()
            deliveries.append(
                await self.outputs.item_events.send(
                    key=key, value={"items": batch}, partition=partition
                )
            )
        for delivery in deliveries:
            if delivery is not None:
                await delivery  # the broker acknowledged the delta
        if values:
            self.metrics.item_messages.inc(len(deliveries))
            self.metrics.item_deltas.inc(sum(len(v["events"]) for v in values.values()))
        self.users.apply()
        acks, self.pending_acks = self.pending_acks, []
        for event in acks:
            await stream.ack(event)

    async def fold_and_send(self, chunk: list[Decoded], scores: Any) -> None:
        outcome = self.processor.fold_batch(
            chunk, scores, self.users, now_ms(), enter, erasures=self.erasures
        )
        leave()
        folded_at = now_ms()
        for item_id, item_event in outcome.item_events:
            held = self.pending_items.get(item_id)
            if held is None:
                self.pending_items[item_id] = {**item_event, "since": folded_at}
            else:
                held["events"].extend(item_event["events"])
                if item_event.get("pairs"):
                    held.setdefault("pairs", []).extend(item_event["pairs"])
        for d, problem in outcome.rejected:
            await self.send_dead(problem, d.source)
        self.metrics.duplicates.inc(outcome.duplicates)
        self.metrics.before_erasure.inc(outcome.before_erasure)
        for kind, count in outcome.counts.items():
            self.metrics.events.labels(kind).inc(count)
        for user_id in outcome.erased:
            self.metrics.erasures.inc()
            self.coalescer.forget(user_id)
        clock = now_ms()
        await self.emit(
            [
                Request(user_id, event_id, ts, outcome.states.get(user_id))
                for user_id, (event_id, ts) in outcome.triggers.items()
                if self.coalescer.offer(user_id, event_id, ts, clock)
            ]
        )

    async def emit(self, requests: list[Request]) -> None:
        if not requests:
            return
        for value in self.processor.recommend_many(requests, self.users, now_ms()):
            if value is None:
                continue  # erased, or never seen
            self.metrics.recommendations.inc()
            self.metrics.latency.observe(value["latency_ms"] / 1000.0)
            await self.outputs.recommendations.send(key=value["user_id"].encode(), value=value)

    async def flush_coalesced(self) -> None:
        due = self.coalescer.due(now_ms())
        await self.emit([Request(u, event_id, ts) for u, event_id, ts in due])

    async def send_dead(self, exc: DeadLetter, event: faust.EventT) -> None:
        msg = event.message
        record = dead_letter(
            exc,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=msg.key,
            raw=msg.value,
            now_ms=now_ms(),
        )
        self.metrics.dead.labels(exc.kind).inc()
        # The kind only: a schema error's message can quote the value (user text, ids).
        log.info("dead letter %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, exc.kind)
        await self.outputs.deadletters.send(key=msg.key, value=record.to_json_dict())


async def push(queue: asyncio.Queue[Piece], piece: Piece, folder: asyncio.Future[None]) -> None:
    """Queue a piece for the folding task, or raise what stopped that task."""
    put = asyncio.ensure_future(queue.put(piece))
    await asyncio.wait({put, folder}, return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()
    if folder.done():
        folder.result()  # re-raise its exception in the agent: Faust then crashes the worker
        raise RuntimeError("the folding task stopped")


def model_threads(configured: int, scorers: int, cores: int | None = None) -> int:
    """Intra-op threads of the worker's model: as configured, or (0) the cores but one, shared
    by the ``scorers`` scoring threads (at least one each).

    The event loop folds and ranks on the core left over; on 2 cores a model thread on the
    loop's core fought it for that core (benchmarks/pipeline).
    """
    if configured > 0:
        return configured
    return max(1, ((cores or os.cpu_count() or 2) - 1) // max(scorers, 1))


def enter(d: Decoded) -> None:
    """Table reads and writes go to the store and changelog partition of the event being
    folded (Faust reads it from a context variable that ``noack_take`` batches do not set)."""
    from faust.streams import _current_event

    _current_event.set(weakref.ref(d.source))


def leave() -> None:
    """No event entered: a read outside folding (a coalesced recommendation) looks in every
    partition's store instead of the last event's."""
    from faust.streams import _current_event

    _current_event.set(None)
