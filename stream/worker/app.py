"""``make_app(settings)``: the Faust app, its topics, tables and thin agents.

Agents decode at the edge (bad values become dead letters), hand decoded batches to the
``Processor`` (which calls the pure core) and send what it returns. One agent reads all user-keyed
input topics so a user's reviews, chats, clicks and erasures are folded in arrival order on one
partition; item-keyed state (affect, popularity) is fed through an internal repartition topic.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import faust
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from stream.contract.decoding import check_key, dead_letter, decode
from stream.contract.topics import INPUT_KINDS
from stream.errors import DeadLetter
from stream.ports import ItemIndex, SentimentModel
from stream.settings import Settings
from stream.worker.processor import Decoded, Processor, Request

log = logging.getLogger("moodstream.app")
INDEX_POLL_S = 30.0


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Metrics:
    """Prometheus metrics of one app, in a registry of its own (no process-global state)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter(
            "moodstream_events_total", "valid events folded", ["kind"], registry=r
        )
        self.dead = Counter(
            "moodstream_dead_letters_total",
            "values sent to the dead-letter topic",
            ["kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "moodstream_duplicates_total", "events dropped as already seen", registry=r
        )
        self.erasures = Counter("moodstream_erasures_total", "users erased", registry=r)
        self.recommendations = Counter(
            "moodstream_recommendations_total", "recommendations emitted", registry=r
        )
        self.latency = Histogram(
            "moodstream_event_to_recommendation_seconds",
            "event time to emit",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.batch = Histogram(
            "moodstream_batch_size",
            "events per micro-batch",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.provider = Info(
            "moodstream_model", "model version and ONNX Runtime provider", registry=r
        )
        self.index_items = Gauge("moodstream_index_items", "items in the served index", registry=r)
        # Which side of the pipeline is the bottleneck: much waiting means the model is.
        self.score_wait = Counter(
            "moodstream_score_wait_seconds",
            "time the folding task waited for a piece's scores",
            registry=r,
        )
        self.fold_time = Counter(
            "moodstream_fold_seconds",
            "time spent folding, ranking and sending scored pieces",
            registry=r,
        )


@dataclass
class Coalescer:
    """At most one recommendation per user per interval; the latest state wins."""

    interval_ms: int
    last_emit: dict[str, int] = field(default_factory=dict)
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)  # user -> (event_id, ts)

    def offer(self, user_id: str, event_id: str, event_ts: int, now: int) -> bool:
        """True: emit now. False: held back, ``due`` hands it out later."""
        last = self.last_emit.get(user_id)
        if last is None or now - last >= self.interval_ms:
            self.last_emit[user_id] = now
            self.pending.pop(user_id, None)
            return True
        self.pending[user_id] = (event_id, event_ts)
        return False

    def due(self, now: int) -> list[tuple[str, str, int]]:
        ready = [u for u in self.pending if now - self.last_emit.get(u, 0) >= self.interval_ms]
        out = []
        for user_id in ready:
            event_id, ts = self.pending.pop(user_id)
            self.last_emit[user_id] = now
            out.append((user_id, event_id, ts))
        return out

    def forget(self, user_id: str) -> None:
        self.last_emit.pop(user_id, None)
        self.pending.pop(user_id, None)


def make_app(
    settings: Settings,
    *,
    model: SentimentModel | None = None,
    index: ItemIndex | None = None,
) -> faust.App:
    """Build the worker app. Model and index default to the ones the settings point at."""
    if model is None:
        from stream.adapters.sentiment import OnnxSentimentModel

        threads = model_threads(settings.intra_op_threads, settings.score_threads)
        model = OnnxSentimentModel.from_settings(settings.replace(intra_op_threads=threads))
    holder = None
    if index is None:
        from stream.worker.serving import index_holder

        holder = index_holder(settings, model)
        index = holder.index

    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        store=settings.store,
        datadir=settings.data_dir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=settings.web_port > 0,
        web_port=max(settings.web_port, 1),
        web_host="127.0.0.1",
        consumer_auto_offset_reset="earliest",
        producer_linger=settings.linger_ms / 1000.0,
        stream_wait_empty=False,
        autodiscover=False,
        logging_config=None,
    )
    metrics = Metrics()
    register = getattr(model, "register_metrics", None)
    if register is not None:
        register(metrics.registry)  # inference latency, batch sizes, provider
    metrics.provider.info(
        {
            "model_version": model.version,
            "provider": _provider(model),
            "index_version": index.version,
        }
    )
    metrics.index_items.set(len(index.ids()))
    processor = Processor(settings, model, index)
    coalescer = Coalescer(settings.recommend_interval_ms)

    def topic(kind: str, **kwargs: Any) -> faust.TopicT:
        return app.topic(settings.topic(kind), partitions=settings.partitions, **kwargs)

    input_topic = app.topic(
        *(settings.topic(k) for k in INPUT_KINDS),
        partitions=settings.partitions,
        key_serializer="raw",
        value_serializer="raw",
    )
    recommendations = topic("recommendations", key_serializer="raw", value_serializer="json")
    deadletters = topic("deadletter", key_serializer="raw", value_serializer="json")
    item_events = app.topic(
        f"{settings.app_id}-item-events",
        partitions=settings.partitions,
        internal=True,
        key_serializer="raw",
        value_serializer="json",
    )
    # Keys and values are JSON (Faust's table default); values are the core's to_dict() forms.
    users = app.Table("users", default=None, partitions=settings.partitions, key_type=str)
    items = app.Table("items", default=None, partitions=settings.partitions, key_type=str)
    kind_of = {settings.topic(k): k for k in INPUT_KINDS}

    async def send_dead(exc: DeadLetter, event: faust.EventT) -> None:
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
        metrics.dead.labels(exc.kind).inc()
        log.info("dead letter %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, exc)
        await deadletters.send(key=msg.key, value=record.to_json_dict())

    async def emit(requests: list[Request]) -> None:
        if not requests:
            return
        for value in processor.recommend_many(requests, users, now_ms()):
            if value is None:
                continue  # erased, or never seen
            metrics.recommendations.inc()
            metrics.latency.observe(value["latency_ms"] / 1000.0)
            await recommendations.send(key=value["user_id"].encode(), value=value)

    # Scoring threads take pieces in the order the agent hands them over; the folding task
    # awaits their scores in that order. Two threads: while one waits for the GIL between ONNX
    # Runtime calls, the other computes (mixed traffic: 329-348 texts/s with 2, 263-266 with 1).
    scorer = ThreadPoolExecutor(
        max_workers=max(1, settings.score_threads), thread_name_prefix="moodstream-score"
    )

    @app.agent(input_topic, name="user-events")
    async def user_events(stream: faust.StreamT) -> None:
        """Decode a batch, hand its pieces to the scoring thread and go on to the next batch;
        ``fold_pieces`` folds, ranks and sends them in order as their scores arrive. So the
        model scores batch n+1 while the event loop folds batch n. Events are acknowledged
        (their offsets become committable) only after they are folded: a crash redelivers them.
        """
        loop = asyncio.get_running_loop()
        wait_s = settings.batch_wait_ms / 1000
        pieces: asyncio.Queue[Piece] = asyncio.Queue(maxsize=PIECES_AHEAD)
        folder = asyncio.ensure_future(fold_pieces(stream, pieces))
        folder.add_done_callback(crash_on_failure)
        try:
            async for batch in stream.noack_take(settings.batch_events, wait_s):  # type: ignore[attr-defined]
                metrics.batch.observe(len(batch))
                decoded: list[Decoded] = []
                dead: list[Any] = []
                for event in batch:
                    kind = kind_of.get(event.message.topic, "")
                    try:
                        record = decode(
                            kind,
                            event.message.value,
                            max_value_bytes=settings.max_value_bytes,
                            max_text_bytes=settings.max_text_bytes,
                        )
                        check_key(record, event.message.key)
                    except DeadLetter as exc:
                        await send_dead(exc, event)
                        dead.append(event)
                        continue
                    decoded.append(Decoded(kind, record, event))
                chunks = processor.chunks(decoded) or [[]]
                for i, chunk in enumerate(chunks):
                    scores = loop.run_in_executor(scorer, processor.score, chunk)
                    await _push(pieces, Piece(chunk, scores, dead if i == 0 else []), folder)
        finally:
            folder.cancel()

    crashing: set[asyncio.Future[None]] = set()

    def crash_on_failure(task: asyncio.Future[None]) -> None:
        """A failed fold stops the worker even while no new batch arrives to notice it; its
        unacknowledged events go to the successor."""
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("folding task failed: %r", error)
            crash = asyncio.ensure_future(app.crash(error))  # type: ignore[arg-type]
            crashing.add(crash)  # a reference, so the task is not collected mid-way
            crash.add_done_callback(crashing.discard)

    async def fold_pieces(stream: faust.StreamT, pieces: asyncio.Queue[Piece]) -> None:
        clock = time.perf_counter
        while True:
            piece = await pieces.get()
            began = clock()
            scores = await piece.scores
            scored = clock()
            if piece.chunk:
                await fold_and_send(piece.chunk, scores)
            metrics.score_wait.inc(scored - began)
            metrics.fold_time.inc(clock() - scored)
            for event in piece.acks:
                await stream.ack(event)
            for d in piece.chunk:
                await stream.ack(d.source)

    async def fold_and_send(chunk: list[Decoded], scores: Any) -> None:
        outcome = processor.fold_batch(chunk, scores, users, now_ms(), _enter)
        for item_id, item_event in outcome.item_events:
            await item_events.send(key=item_id.encode(), value=item_event)
        for d, problem in outcome.rejected:
            await send_dead(problem, d.source)
        metrics.duplicates.inc(outcome.duplicates)
        for kind, count in outcome.counts.items():
            metrics.events.labels(kind).inc(count)
        for user_id in outcome.erased:
            metrics.erasures.inc()
            coalescer.forget(user_id)
        clock = now_ms()
        await emit(
            [
                Request(user_id, event_id, ts, outcome.states.get(user_id))
                for user_id, (event_id, ts) in outcome.triggers.items()
                if coalescer.offer(user_id, event_id, ts, clock)
            ]
        )

    @app.agent(item_events, name="item-events")
    async def item_updates(stream: faust.StreamT) -> None:
        async for event in stream.events():
            processor.fold_item(event.value, items)

    @items.on_recover
    async def reload_items() -> None:
        """The board mirrors the table: rebuild it once the changelog is replayed."""
        loaded = processor.reload_items(items)
        log.info("item board reloaded: %d items", loaded)

    @app.timer(max(settings.recommend_interval_ms, 50) / 1000.0)
    async def flush_coalesced() -> None:
        await emit([Request(u, event_id, ts) for u, event_id, ts in coalescer.due(now_ms())])

    if holder is not None:

        @app.timer(INDEX_POLL_S)
        async def reload_index() -> None:
            """Swap in a newer index version written into the same folder (atomic rename)."""
            if await asyncio.get_running_loop().run_in_executor(None, holder.reload):
                processor.swap_index(holder.index, items)
                metrics.index_items.set(len(holder.index.ids()))
                log.info("now serving index %s", holder.version)
            elif holder.last_error:
                log.warning("index reload failed: %s", holder.last_error)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(metrics.registry), content_type="text/plain")

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        return web.json(
            {
                "status": "ok",
                "model": model.version,
                "index": processor.index.version,
                "provider": _provider(model),
            }
        )

    app.moodstream = {  # type: ignore[attr-defined]
        "metrics": metrics,
        "processor": processor,
        "coalescer": coalescer,
        "tables": {"users": users, "items": items},
        "agents": (user_events, item_updates),
    }
    return app


PIECES_AHEAD = 4  # scored pieces that may wait to be folded: bounds memory and latency


@dataclass(frozen=True)
class Piece:
    """Part of a batch: its events, their scores (a future), and dead letters to acknowledge."""

    chunk: list[Decoded]
    scores: asyncio.Future[Any]
    acks: list[Any]


async def _push(queue: asyncio.Queue[Piece], piece: Piece, folder: asyncio.Future[None]) -> None:
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
    loop's core fought it for that core (benchmarks/pipeline.py).
    """
    if configured > 0:
        return configured
    return max(1, ((cores or os.cpu_count() or 2) - 1) // max(scorers, 1))


def _enter(d: Decoded) -> None:
    """Table writes go to the changelog partition of the event being folded (Faust reads it
    from a context variable that batches taken with ``noack_take`` do not set per event)."""
    from faust.streams import _current_event

    _current_event.set(weakref.ref(d.source))


def _provider(model: SentimentModel) -> str:
    return str(getattr(model, "provider", "unknown"))
