"""``moodstream deadletters redrive``: send dead letters back to the topic they came from.

For the failures that a fix elsewhere cures: ``unknown_item`` after an index rebuild that added
the items, or any kind after a worker fix. Dead letters carry the raw value (base64 where it was
not text); values cut at the dead-letter size bound cannot be re-sent and are counted instead.
A re-sent value that fails again becomes a new dead letter, so pick the range (--from/--to, the
time the value was dead-lettered) to avoid re-sending the same letters twice.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import click

from stream.adapters.kafka import connect, make_consumer, make_producer, topic_partitions
from stream.cli.options import pop_settings, quiet_kafka_logs, settings_options
from stream.cli.topics import user_key
from stream.errors import BrokerError
from stream.settings import Settings


@dataclass
class Redrive:
    """What a redrive picked, sent and could not send."""

    sent: Counter[tuple[str, str]] = field(default_factory=Counter)  # (topic, kind) -> count
    truncated: int = 0
    unreadable: int = 0
    considered: int = 0

    def lines(self, dry_run: bool) -> list[str]:
        verb = "would re-send" if dry_run else "re-sent"
        total = sum(self.sent.values())
        out = [f"{verb} {total} of {self.considered} dead letter(s) read"]
        by_topic: dict[str, Counter[str]] = {}
        for (topic, kind), n in sorted(self.sent.items()):
            by_topic.setdefault(topic, Counter())[kind] += n
        for topic, kinds in by_topic.items():
            detail = ", ".join(f"{k}={n}" for k, n in sorted(kinds.items()))
            out.append(f"  {topic}: {sum(kinds.values())} ({detail})")
        if self.truncated:
            out.append(f"  skipped {self.truncated} whose raw value was cut (not re-sendable)")
        if self.unreadable:
            out.append(f"  skipped {self.unreadable} that are not dead-letter records")
        return out


def raw_value(letter: dict[str, Any]) -> bytes | None:
    """The original bytes of a dead letter, or None when they were cut or are missing."""
    if letter.get("raw_truncated") or not isinstance(letter.get("raw"), str):
        return None
    if letter.get("raw_encoding") == "base64":
        return base64.b64decode(letter["raw"])
    return str(letter["raw"]).encode("utf-8")


async def read_dead_letters(settings: Settings) -> list[dict[str, Any]]:
    """The dead-letter topic from the beginning up to its end offsets at the start."""
    from aiokafka import TopicPartition

    topic = settings.topic("deadletter")
    counts = await topic_partitions(settings)
    if topic not in counts:
        raise BrokerError(f"topic {topic} does not exist: no dead letters yet")
    consumer = make_consumer(
        settings, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
    )
    await connect(consumer, settings)
    letters: list[dict[str, Any]] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(counts[topic])]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        left = {tp for tp in tps if end[tp] > 0}
        while left:
            batch = await consumer.getmany(*left, timeout_ms=1000)
            for tp, messages in batch.items():
                for m in messages:
                    try:
                        letters.append(json.loads(m.value) if m.value else {})
                    except (ValueError, UnicodeDecodeError):
                        letters.append({})
                    if m.offset + 1 >= end[tp]:
                        left.discard(tp)
    finally:
        await consumer.stop()
    return letters


def select(
    letters: list[dict[str, Any]], kinds: tuple[str, ...], lower: int | None, upper: int | None
) -> list[dict[str, Any]]:
    """The letters of the given kinds (all when empty) dead-lettered in [lower, upper)."""
    chosen = []
    for letter in letters:
        if kinds and letter.get("error_kind") not in kinds:
            continue
        ts = letter.get("ts")
        if lower is not None or upper is not None:
            if not isinstance(ts, int):
                continue
            if (lower is not None and ts < lower) or (upper is not None and ts >= upper):
                continue
        chosen.append(letter)
    return chosen


async def redrive(
    settings: Settings,
    kinds: tuple[str, ...],
    lower: int | None,
    upper: int | None,
    dry_run: bool,
) -> Redrive:
    letters = await read_dead_letters(settings)
    result = Redrive(considered=len(letters))
    outgoing: list[tuple[str, str, bytes]] = []
    for letter in select(letters, kinds, lower, upper):
        topic = letter.get("source_topic")
        if not isinstance(topic, str) or "error_kind" not in letter:
            result.unreadable += 1
            continue
        raw = raw_value(letter)
        if raw is None:
            result.truncated += 1
            continue
        outgoing.append((topic, str(letter["error_kind"]), raw))
    if not dry_run and outgoing:
        existing = await topic_partitions(settings)
        missing = sorted({t for t, _, _ in outgoing} - set(existing))
        if missing:
            raise BrokerError(f"source topic(s) {', '.join(missing)} no longer exist")
        producer = make_producer(settings, acks="all")
        await connect(producer, settings)
        try:
            for topic, _, raw in outgoing:
                await producer.send(topic, raw, key=user_key(raw))
            await producer.flush()
        finally:
            await producer.stop()
    for topic, kind, _ in outgoing:
        result.sent[(topic, kind)] += 1
    return result


@click.group()
def deadletters() -> None:
    """Re-drive dead letters to the topics they came from."""


@deadletters.command("redrive")
@click.option(
    "--kind", "kinds", multiple=True, help="only this error kind (repeatable), e.g. unknown_item"
)
@click.option("--from", "start", default=None, help="dead-lettered at or after: epoch ms or ISO")
@click.option("--to", "end", default=None, help="dead-lettered before: epoch ms or ISO")
@click.option("--dry-run", is_flag=True, help="say what would be sent, send nothing")
@settings_options
def redrive_command(
    kinds: tuple[str, ...], start: str | None, end: str | None, dry_run: bool, **kwargs: Any
) -> None:
    """Re-send the dead letters of --kind (all kinds if none) between --from and --to to their
    source topics, keyed by user_id as a producer would, and say what was sent."""
    from stream.offline.times import parse_when

    settings = pop_settings(kwargs)
    quiet_kafka_logs()
    lower = parse_when(start) if start else None
    upper = parse_when(end) if end else None
    result = asyncio.run(redrive(settings, kinds, lower, upper, dry_run))
    for line in result.lines(dry_run):
        click.echo(line)
