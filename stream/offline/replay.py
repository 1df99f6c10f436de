"""Replay recorded events through the worker's ``Processor``, in event-time order.

Input is a range of the input topics (read with aiokafka, no consumer group, so the live
worker's offsets are untouched) or a data set file. Every value goes through the same edge as in
the worker: ``contract.decoding.decode`` and the key check, so a bad value is counted as a dead
letter of its kind and never stops the replay. Valid events are sorted by event time (stable) and
scored by ``Processor.score`` in batches of ``Settings.batch_size``, then folded one at a time by
``Processor.fold_batch``; every event that triggers a recommendation gets one, ranked at its event
time, and its item update is folded after that (the worker sends item updates through an internal
topic, so they land after the recommendation too). Tables are plain dicts. The clock is event
time throughout, so a replay is deterministic and its output does not depend on the batch size.

Range bounds: ``o:123`` is an offset (per partition; ``--from`` inclusive, ``--to`` exclusive);
digits are epoch ms and anything else an ISO date/time, compared with the Kafka record time
(topics are scanned from the beginning and filtered) or, for a data set, with the event time.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.adapters.kafka import ensure_topics, make_admin, make_consumer, make_producer
from stream.contract.decoding import check_key, decode
from stream.contract.topics import INPUT_KINDS
from stream.errors import BrokerError, ConfigError, DeadLetter
from stream.ports import Scores
from stream.settings import Settings
from stream.worker.processor import Decoded, Processor

log = logging.getLogger(__name__)

TEXT_KINDS = ("reviews", "chats")  # the kinds whose text Processor.score sends to the model
IDLE_TIMEOUT_S = 15.0  # a partition that stops short of its end offset for this long is given up


@dataclass(frozen=True)
class Bound:
    """One end of a range: an offset or a time (epoch ms); ``None`` = open."""

    offset: int | None = None
    ts: int | None = None


def parse_bound(text: str | None) -> Bound:
    if text is None or not text.strip():
        return Bound()
    value = text.strip()
    if value.lower().startswith("o:"):
        number = value[2:]
        if not number.isdigit():
            raise ConfigError(f"bad offset {text!r}: use o:<offset>, e.g. o:0")
        return Bound(offset=int(number))
    from stream.offline.times import parse_when

    return Bound(ts=parse_when(value))


@dataclass(frozen=True)
class RawRecord:
    """One consumed value with where it came from (``kind``: reviews, chats, clicks, erasure)."""

    kind: str
    value: bytes | None
    key: bytes | None
    topic: str = ""
    partition: int = 0
    offset: int = 0
    timestamp: int = 0  # Kafka record time (epoch ms); event time for data set records


@dataclass
class ReplaySummary:
    read: int = 0  # values considered (in range)
    events: Counter[str] = field(default_factory=Counter)  # folded, by kind
    dead_letters: Counter[str] = field(default_factory=Counter)  # by error kind
    duplicates: int = 0
    erased: int = 0
    recommendations: int = 0
    cold: int = 0  # recommendations that fell back to popularity
    users: int = 0  # users with state at the end
    items: int = 0  # items with state at the end
    texts: int = 0  # texts scored by the model
    first_ts: int | None = None
    last_ts: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "events": dict(sorted(self.events.items())),
            "dead_letters": dict(sorted(self.dead_letters.items())),
            "duplicates": self.duplicates,
            "erased": self.erased,
            "recommendations": self.recommendations,
            "cold_recommendations": self.cold,
            "users": self.users,
            "items": self.items,
            "texts_scored": self.texts,
            "first_ts": self.first_ts,
            "last_ts": self.last_ts,
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        """Human summary for the terminal."""
        events = sum(self.events.values())
        dead = sum(self.dead_letters.values())
        out = [
            f"read {self.read} values: {events} events folded "
            f"({_counts(self.events)}), {dead} dead letters"
            + (f" ({_counts(self.dead_letters)})" if dead else "")
            + f", {self.duplicates} duplicates",
            f"{self.users} users, {self.items} items with state; {self.erased} erasures",
            f"{self.recommendations} recommendations ({self.cold} from popularity)",
        ]
        if self.first_ts is not None and self.last_ts is not None:
            from stream.offline.backtest import iso_day

            rate = self.texts / self.seconds if self.seconds > 0 else 0.0
            out.append(
                f"event time {iso_day(self.first_ts)} .. {iso_day(self.last_ts)}; "
                f"{self.seconds:.1f} s, {self.texts} texts scored ({rate:.0f}/s)"
            )
        return out


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))


class Replay:
    """Drives one ``Processor`` over records; tables are dicts that live as long as the replay."""

    def __init__(
        self,
        processor: Processor,
        settings: Settings,
        *,
        on_recommendation: Callable[[dict[str, Any]], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.processor = processor
        self.settings = settings
        self.users: dict[str, Any] = {}
        self.items: dict[str, Any] = {}
        self.erasures: dict[str, Any] = {}
        self.summary = ReplaySummary()
        self._on_rec = on_recommendation
        self._on_progress = on_progress

    def decode_all(self, records: Iterable[RawRecord]) -> list[Decoded]:
        """Valid records in event-time order (stable); bad ones counted as dead letters."""
        good: list[Decoded] = []
        for raw in records:
            self.summary.read += 1
            try:
                record = decode(
                    raw.kind,
                    raw.value,
                    max_value_bytes=self.settings.max_value_bytes,
                    max_text_bytes=self.settings.max_text_bytes,
                )
                check_key(record, raw.key)
            except DeadLetter as exc:
                self.summary.dead_letters[exc.kind] += 1
                continue
            good.append(Decoded(raw.kind, record, raw))
        good.sort(key=lambda d: int(d.record.ts))
        return good

    def run(self, records: Iterable[RawRecord]) -> ReplaySummary:
        started = time.perf_counter()
        decoded = self.decode_all(records)
        step = max(self.settings.batch_size, 1)
        for start in range(0, len(decoded), step):
            self.fold(decoded[start : start + step])
            if self._on_progress is not None:
                self._on_progress(min(step, len(decoded) - start))
        s = self.summary
        s.users, s.items = len(self.users), len(self.items)
        if decoded:
            s.first_ts, s.last_ts = int(decoded[0].record.ts), int(decoded[-1].record.ts)
        s.seconds += time.perf_counter() - started
        return s

    def fold(self, batch: Sequence[Decoded]) -> None:
        """Score the batch's texts in one model call, then fold its events one at a time, each
        followed by the recommendation it triggers, so the output does not depend on where
        batches were cut. As in the worker, item state takes an event in after the
        recommendation it triggers (there it travels through the item-events topic)."""
        p, s = self.processor, self.summary
        scores = p.score(batch)
        row = 0
        for d in batch:
            one = None
            if d.kind in TEXT_KINDS and scores is not None:
                one = _rows(scores, row)
                row += 1
                s.texts += 1
            outcome = p.fold_batch([d], one, self.users, int(d.record.ts), erasures=self.erasures)
            for _, problem in outcome.rejected:
                s.dead_letters[problem.kind] += 1
            s.duplicates += outcome.duplicates
            s.erased += len(outcome.erased)
            for kind, count in outcome.counts.items():
                s.events[kind] += count
            for user_id, (event_id, ts) in outcome.triggers.items():
                state = outcome.states.get(user_id)
                value = p.recommend(user_id, event_id, ts, self.users, ts, state)
                if value is None:
                    continue
                s.recommendations += 1
                s.cold += bool(value.get("fallback"))
                if self._on_rec is not None:
                    self._on_rec(value)
            for _, item_event in outcome.item_events:
                p.fold_item(item_event, self.items)


def _rows(scores: Scores, row: int) -> Scores:
    cut = slice(row, row + 1)
    return Scores(
        scores.sentiment[cut], scores.emotions[cut], scores.embedding[cut], scores.truncated[cut]
    )


# ----------------------------------------------------------------------------- sources


def dataset_records(
    path: str | Path, start: Bound, end: Bound, *, max_text_bytes: int
) -> tuple[list[RawRecord], str]:
    """Review events of an Amazon review file as raw ``reviews`` values; (records, load note)."""
    if start.offset is not None or end.offset is not None:
        raise ConfigError("o:<offset> bounds apply to topics; give a data set range as times")
    from stream.offline.datasets import load_reviews

    data = load_reviews(path, max_text_bytes=max_text_bytes)
    out = []
    for e in data.events:
        if (start.ts is not None and e.ts < start.ts) or (end.ts is not None and e.ts >= end.ts):
            continue
        value = json.dumps(e.to_json_dict(), ensure_ascii=False).encode("utf-8")
        out.append(RawRecord("reviews", value, e.user_id.encode(), timestamp=e.ts))
    return out, data.report.summary()


async def read_topics(
    settings: Settings,
    start: Bound,
    end: Bound,
    *,
    kinds: Sequence[str] = INPUT_KINDS,
    idle_timeout_s: float = IDLE_TIMEOUT_S,
) -> list[RawRecord]:
    """Every record of the input topics in the range, up to the end offsets seen at the start."""
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    names = {settings.topic(k): k for k in kinds}
    consumer = make_consumer(
        settings,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        raise BrokerError(f"cannot reach the broker at {settings.broker}: {exc}") from None
    out: list[RawRecord] = []
    try:
        tps = [TopicPartition(t, p) for t, p in await _partitions(settings, sorted(names))]
        if not tps:
            raise ConfigError(f"none of the topics {', '.join(sorted(names))} exist")
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        stop_at: dict[Any, int] = {}
        for tp in tps:
            first = begins[tp] if start.offset is None else max(begins[tp], start.offset)
            stop_at[tp] = ends[tp] if end.offset is None else min(ends[tp], end.offset)
            consumer.seek(tp, first)
        active = {tp for tp in tps if (await consumer.position(tp)) < stop_at[tp]}
        idle_since = time.monotonic()
        while active:
            batch = await consumer.getmany(*active, timeout_ms=500, max_records=5000)
            if batch:
                idle_since = time.monotonic()
            for tp, messages in batch.items():
                for m in messages:
                    if m.offset >= stop_at[tp]:
                        break
                    if (start.ts is not None and m.timestamp < start.ts) or (
                        end.ts is not None and m.timestamp >= end.ts
                    ):
                        continue
                    out.append(
                        RawRecord(
                            names[tp.topic],
                            m.value,
                            m.key,
                            tp.topic,
                            tp.partition,
                            m.offset,
                            m.timestamp,
                        )
                    )
            for tp in list(active):
                if await consumer.position(tp) >= stop_at[tp]:
                    active.discard(tp)
            if active and time.monotonic() - idle_since > idle_timeout_s:
                log.warning(
                    "giving up on %s: no records for %.0f s before the end offset",
                    sorted(str(tp) for tp in active),
                    idle_timeout_s,
                )
                break
    except KafkaError as exc:
        raise BrokerError(f"reading {', '.join(sorted(names))} failed: {exc}") from None
    finally:
        await consumer.stop()
    return out


async def _partitions(settings: Settings, topics: list[str]) -> list[tuple[str, int]]:
    """(topic, partition) of the topics that exist, from fresh cluster metadata."""
    admin = make_admin(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    out = []
    for topic in described:
        name = topic.get("topic", topic.get("name"))
        if topic.get("error_code", 0) != 0 or name not in topics:
            continue
        for part in topic.get("partitions", []):
            out.append((str(name), int(part.get("partition", part.get("partition_index", 0)))))
    return sorted(out)


def publish_order(records: Sequence[RawRecord], settings: Settings) -> Iterator[RawRecord]:
    """Bad values first (they change no state), then valid events in event-time order: the
    order the replay folds them, so a shadow worker folds them the same way."""
    timed: list[tuple[int, int, RawRecord]] = []
    for n, raw in enumerate(records):
        try:
            record = decode(
                raw.kind,
                raw.value,
                max_value_bytes=settings.max_value_bytes,
                max_text_bytes=settings.max_text_bytes,
            )
        except DeadLetter:
            yield raw
            continue
        timed.append((int(record.ts), n, raw))
    timed.sort(key=lambda t: (t[0], t[1]))
    for _, _, raw in timed:
        yield raw


async def publish(records: Sequence[RawRecord], settings: Settings, prefix: str) -> int:
    """Send the records to ``prefix + moodstream.<kind>.v1`` (created if missing) with the keys
    they were read with (data set events: their user_id, as the platform would key them)."""
    from aiokafka.errors import KafkaError

    target = settings.replace(topic_prefix=prefix)
    producer = make_producer(settings, acks="all")
    sent = 0
    try:
        wanted = {target.topic(r.kind) for r in records}
        await ensure_topics(settings, wanted, settings.partitions, settings.replication)
        await producer.start()
        for raw in publish_order(records, settings):
            await producer.send(target.topic(raw.kind), raw.value, key=raw.key)
            sent += 1
        await producer.flush()
    except KafkaError as exc:
        raise BrokerError(f"publishing to {prefix}moodstream.*.v1 failed: {exc}") from None
    finally:
        await producer.stop()
    return sent
