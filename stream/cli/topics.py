"""``moodstream produce``, ``tail`` and ``topics``: drive, watch and set up the topics without code.

None of them creates a topic by accident: ``produce`` and ``tail`` only use topics that exist
(they ask for the whole topic list, which no broker answers by creating one), and ``topics
create`` is the one deliberate way besides the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import IO, Any

import click

from stream.adapters.kafka import (
    connect,
    make_consumer,
    make_producer,
    prepare_worker_topics,
    topic_partitions,
)
from stream.cli.options import pop_settings, quiet_kafka_logs, settings_options
from stream.contract.decoding import decode
from stream.contract.topics import partition_problems, resolve, worker_topics
from stream.errors import BrokerError, ConfigError, DeadLetter
from stream.settings import Settings

PROBLEM_CHARS = 240  # a bad line's report is cut here: the value itself may be 64 KiB


def cut(text: str, limit: int = PROBLEM_CHARS) -> str:
    """One line of at most ``limit`` characters, saying how much was left out."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return f"{flat[:limit]}... ({len(flat) - limit} more characters)"


def _missing_topic(topic: str) -> BrokerError:
    return BrokerError(
        f"topic {topic} does not exist: start `moodstream worker` (it creates its topics) or "
        "run `moodstream topics create` with the worker's --partitions"
    )


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    try:
        return Path(path).open("rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


async def _produce(
    settings: Settings, topic: str, kind: str, lines: list[tuple[int, bytes]], validate: bool
) -> tuple[int, list[str]]:
    problems: list[str] = []
    if topic not in await topic_partitions(settings):
        raise _missing_topic(topic)
    producer = make_producer(settings, acks="all")
    await connect(producer, settings)
    sent = 0
    try:
        for number, raw in lines:
            key: bytes | None = None
            if validate:
                try:
                    record = decode(
                        kind,
                        raw,
                        max_value_bytes=settings.max_value_bytes,
                        max_text_bytes=settings.max_text_bytes,
                    )
                except DeadLetter as exc:
                    problems.append(cut(f"line {number}: {exc.kind}: {exc.message}"))
                    continue
                user = getattr(record, "user_id", None)
                key = user.encode() if user else None
            else:
                key = user_key(raw)
            await producer.send(topic, raw, key=key)
            sent += 1
        await producer.flush()
    finally:
        await producer.stop()
    return sent, problems


def user_key(raw: bytes) -> bytes | None:
    """The record key a producer would give a raw value: its user_id (None when unreadable), so
    unvalidated lines and re-driven dead letters land on the partition of their user."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    user = value.get("user_id") if isinstance(value, dict) else None
    return str(user).encode() if user else None


@click.command()
@click.option(
    "--topic", "-t", required=True, help="kind (reviews, chats, clicks, erasure...) or full name"
)
@click.option(
    "--no-validate", is_flag=True, help="send lines as they are (to exercise dead letters)"
)
@click.argument("file", default="-")
@settings_options
def produce(topic: str, no_validate: bool, file: str, **kwargs: Any) -> None:
    """Send FILE (JSON lines, '-' = stdin) to a topic, keyed by user_id.

    Each line is validated against the topic's schema first; a bad line is reported with its
    number and skipped, every other line is still sent, and the exit status is 1.
    """
    settings = pop_settings(kwargs)
    quiet_kafka_logs()
    kind, full = resolve(settings, topic)
    with _open(file) as handle:
        lines = [(n, line.rstrip(b"\r\n")) for n, line in enumerate(handle, 1)]
    lines = [(n, line) for n, line in lines if line.strip()]
    sent, problems = asyncio.run(_produce(settings, full, kind, lines, not no_validate))
    for problem in problems:
        click.echo(f"{file}: {problem}", err=True)
    click.echo(f"sent {sent} record(s) to {full}; {len(problems)} bad line(s) skipped", err=True)
    if problems:
        sys.exit(1)


def _format(kind: str, value: bytes | None, pretty: bool) -> str:
    if value is None:
        return "(tombstone)"
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return repr(value[:200])
    if not pretty:
        return json.dumps(parsed, ensure_ascii=False)
    if kind == "recommendations" and isinstance(parsed, dict):
        emo = parsed.get("emotion", {})
        items = ", ".join(f"{i['item_id']}({i['score']:.2f})" for i in parsed.get("items", [])[:5])
        return (
            f"{parsed.get('user_id')}: valence {emo.get('valence', 0):+.2f} "
            f"{emo.get('dominant', '?')} -> {items} [{parsed.get('latency_ms', 0):.0f} ms]"
        )
    if kind == "deadletter" and isinstance(parsed, dict):
        return (
            f"{parsed.get('source_topic')}[{parsed.get('partition')}]@{parsed.get('offset')} "
            f"{parsed.get('error_kind')}: {parsed.get('error_message')}"
        )
    return json.dumps(parsed, ensure_ascii=False)


async def _tail(
    settings: Settings,
    topic: str,
    kind: str,
    as_json: bool,
    from_beginning: bool,
    limit: int | None,
    idle: float | None,
) -> int:
    from aiokafka import TopicPartition

    partitions = await _wait_for_topic(settings, topic, idle)
    if partitions is None:
        return 0
    consumer = make_consumer(
        settings,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
    )
    await connect(consumer, settings)
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    seen = 0
    try:
        while limit is None or seen < limit:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                if idle is not None:
                    idle -= 0.5
                    if idle <= 0:
                        break
                continue
            for records in batch.values():
                for msg in records:
                    click.echo(_format(kind, msg.value, not as_json))
                    seen += 1
                    if limit is not None and seen >= limit:
                        return seen
    finally:
        await consumer.stop()
    return seen


async def _wait_for_topic(settings: Settings, topic: str, idle: float | None) -> int | None:
    """The topic's partition count once it exists (None if ``idle`` seconds pass first)."""
    waited = 0.0
    while True:
        counts = await topic_partitions(settings)
        if topic in counts:
            return counts[topic]
        if waited == 0.0:
            click.echo(f"waiting for topic {topic} to be created (the worker creates it)", err=True)
        if idle is not None and waited >= idle:
            return None
        await asyncio.sleep(1.0)
        waited += 1.0


@click.command()
@click.option(
    "--topic", "-t", required=True, help="kind (recommendations, deadletter...) or full name"
)
@click.option("--json", "as_json", is_flag=True, help="one JSON value per line")
@click.option("--from-beginning", is_flag=True, help="start at the earliest offset")
@click.option("--max", "limit", type=int, default=None, help="stop after N records")
@click.option("--idle-timeout", type=float, default=None, help="stop after S seconds without data")
@settings_options
def tail(
    topic: str,
    as_json: bool,
    from_beginning: bool,
    limit: int | None,
    idle_timeout: float | None,
    **kwargs: Any,
) -> None:
    """Print the records of a topic as they arrive (pretty, or --json); never creates it."""
    settings = pop_settings(kwargs)
    quiet_kafka_logs()
    kind, full = resolve(settings, topic)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_tail(settings, full, kind, as_json, from_beginning, limit, idle_timeout))


@click.group()
def topics() -> None:
    """Create or check the topics a worker reads and writes (inputs, outputs, internal)."""


@topics.command()
@settings_options
def create(**kwargs: Any) -> None:
    """Create the missing topics with --partitions and --replication, for deployments where the
    worker may not create topics; refuses existing ones with another partition count."""
    settings = pop_settings(kwargs)
    quiet_kafka_logs()
    created = asyncio.run(prepare_worker_topics(settings, create=True))
    for name in created:
        click.echo(f"created {name}")
    click.echo(
        f"{len(created)} topic(s) created, {len(worker_topics(settings)) - len(created)} "
        f"already there ({settings.partitions} partition(s), replication {settings.replication})",
        err=True,
    )


@topics.command()
@settings_options
def describe(**kwargs: Any) -> None:
    """Show each topic's partition count against what the worker needs; exit 1 on a problem."""
    settings = pop_settings(kwargs)
    quiet_kafka_logs()
    specs = worker_topics(settings)
    existing = asyncio.run(topic_partitions(settings))
    bad = 0
    for spec in specs:
        have = existing.get(spec.name)
        if have is None:
            state = "missing"
        elif have != spec.partitions and spec.strict:
            state = "MISMATCH"
        else:
            state = "ok"
        bad += state != "ok"
        shown = "-" if have is None else str(have)
        click.echo(f"{spec.name:<48} {spec.role:<8} {shown:>3}/{spec.partitions:<3} {state}")
    for problem in partition_problems(specs, existing, settings):
        click.echo(problem, err=True)
    if bad:
        sys.exit(1)
