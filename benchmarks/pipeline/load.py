"""Load generation: topics, bulk producing before a drain, paced producing for latency.

Every client comes from the project's Kafka adapter (``stream/adapters/kafka.py``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.common import percentile
from stream.adapters.kafka import ensure_topics, make_consumer, make_producer
from stream.contract.topics import ALL_KINDS
from stream.settings import Settings
from stream.sim.simulate import encode_value

Events = Sequence[tuple[str, dict[str, Any]]]


async def create_topics(bootstrap: str, settings: Settings) -> None:
    await ensure_topics(bootstrap, [settings.topic(k) for k in ALL_KINDS], settings.partitions)
    await asyncio.sleep(1.0)  # partition leaders elected: no NotLeader retries while producing


async def produce(bootstrap: str, settings: Settings, events: Events) -> float:
    """All ``events`` as fast as the broker takes them; returns the seconds that took."""
    producer = make_producer(bootstrap, acks="all", linger_ms=5, max_batch_size=262144)
    await producer.start()
    began = time.perf_counter()
    try:
        futures = []
        for kind, value in events:
            futures.append(
                await producer.send(
                    settings.topic(kind), encode_value(value), key=value["user_id"].encode()
                )
            )
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


@dataclass
class Paced:
    """What a paced run sent and got back."""

    sent: dict[str, int] = field(default_factory=dict)  # event id -> send ms
    kind_of: dict[str, str] = field(default_factory=dict)
    got: list[tuple[int, float, int | None, str]] = field(default_factory=list)
    # ^ receive ms, latency_ms, send ms, kind
    count: int = 0
    lag_max: int = 0
    produced_s: float = 0.0


async def _collect(consumer: Any, run: Paced, stop: asyncio.Event) -> None:
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=100)
        recv = int(time.time() * 1000)
        for msgs in batch.values():
            for m in msgs:
                v = json.loads(m.value)
                eid = v["trigger_event_id"]
                run.got.append(
                    (recv, float(v["latency_ms"]), run.sent.get(eid), run.kind_of.get(eid, "?"))
                )


async def _send_paced(
    producer: Any, settings: Settings, events: Events, rate: float, duration: float, run: Paced
) -> None:
    began = time.perf_counter()
    i = 0
    while time.perf_counter() - began < duration and i < len(events):
        due = int((time.perf_counter() - began) * rate)
        run.lag_max = max(run.lag_max, due - i)
        while i < due and i < len(events):
            kind, value = events[i]
            ts = int(time.time() * 1000)
            value = {**value, "ts": ts}
            run.sent[value["event_id"]] = ts
            run.kind_of[value["event_id"]] = kind
            await producer.send(
                settings.topic(kind), encode_value(value), key=value["user_id"].encode()
            )
            i += 1
        await asyncio.sleep(0.004)
    run.count = i
    run.produced_s = time.perf_counter() - began


def _dist(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
    }


def _latency_summary(run: Paced, rate: float, warmup: float) -> dict[str, Any]:
    first_ms = min(run.sent.values()) + int(warmup * 1000) if run.sent else 0
    kept = [(r, lat, s, k) for r, lat, s, k in run.got if s is not None and s >= first_ms]
    worker_lat = [lat for _, lat, _, _ in kept]
    e2e = [float(r - s) for r, _, s, _ in kept if s is not None]
    return {
        "rate_target": round(rate, 1),
        "rate_achieved": round(run.count / run.produced_s, 1),
        "events_sent": run.count,
        "recommendations": len(run.got),
        "recommendations_measured": len(kept),
        "warmup_s": warmup,
        "worker_latency_ms": _dist(worker_lat),
        "end_to_end_ms": _dist(e2e),
        "worker_latency_ms_by_trigger": {
            kind: _dist([lat for _, lat, _, k in kept if k == kind])
            | {"n": sum(1 for *_, k in kept if k == kind)}
            for kind in ("clicks", "chats", "reviews")
        },
        "producer_behind_max": run.lag_max,
    }


async def paced(
    bootstrap: str,
    settings: Settings,
    events: list[tuple[str, dict[str, Any]]],
    rate: float,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    """Events at ``rate``/s with ``ts`` = wall clock at send; recommendations read back."""
    consumer = make_consumer(
        bootstrap,
        settings.topic("recommendations"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    producer = make_producer(bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    run = Paced()
    stop = asyncio.Event()
    task = asyncio.create_task(_collect(consumer, run, stop))
    await _send_paced(producer, settings, events, rate, duration, run)
    await producer.flush()
    await asyncio.sleep(3.0)  # the last recommendations
    stop.set()
    await task
    await producer.stop()
    await consumer.stop()
    return _latency_summary(run, rate, warmup)
