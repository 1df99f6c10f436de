"""``moodstream simulate``: a seeded catalog and event stream, to files and/or the Kafka topics.

The generator lives in ``stream.sim.simulate``; this module only chooses sinks, paces and produces.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import click

from stream.adapters.kafka import bootstrap_servers, ensure_topics, make_producer
from stream.cli.options import pop_settings, seed_option, settings_options, users_option
from stream.contract.topics import INPUT_KINDS
from stream.errors import BrokerError, ConfigError
from stream.settings import Settings
from stream.sim.simulate import (
    DEFAULT_RATE,
    DEFAULT_START_MS,
    KINDS,
    Message,
    SimConfig,
    Simulation,
    parse_mix,
)

DEFAULT_EVENTS = 10_000
_FILE_SUFFIXES = (".jsonl", ".json", ".ndjson")


@dataclass
class _Stats:
    sent: Counter[str] = field(default_factory=Counter)
    events: int = 0
    bad: int = 0
    bad_skipped: int = 0  # bad values a merged file cannot hold
    started: float = field(default_factory=time.monotonic)

    def note(self, message: Message) -> None:
        if message.bad:
            self.bad += 1
        else:
            self.events += 1


class _Writer:
    """Events to ``DIR/<kind>.jsonl`` (raw values, bad ones included) or one merged JSON-lines file.

    A merged line is ``{"kind": ..., "key": user_id, "value": {...}}``; raw bad bytes cannot be
    put inside JSON, so a merged file holds only valid values.
    """

    def __init__(self, target: str, stack: ExitStack) -> None:
        self.per_kind: dict[str, IO[bytes]] = {}
        self.merged: IO[bytes] | None = None
        if target == "-":
            self.merged = sys.stdout.buffer
            return
        path = Path(target)
        try:
            if path.suffix.lower() in _FILE_SUFFIXES and not path.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
                self.merged = stack.enter_context(path.open("wb"))
            else:
                path.mkdir(parents=True, exist_ok=True)
                for kind in KINDS:
                    self.per_kind[kind] = stack.enter_context((path / f"{kind}.jsonl").open("wb"))
        except OSError as exc:
            raise ConfigError(f"cannot write events to {target}: {exc.strerror}") from None

    def write(self, message: Message, stats: _Stats) -> None:
        if self.merged is not None:
            if message.bad:
                stats.bad_skipped += 1
                return
            key = message.key.decode("utf-8")
            self.merged.write(
                b'{"kind":"%s","key":%s,"value":%s}\n'
                % (message.kind.encode(), json.dumps(key).encode(), message.value)
            )
        else:
            self.per_kind[message.kind].write(message.value + b"\n")


def _write_json(path: str, payload: Any, what: str) -> None:
    try:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {what} to {path}: {exc.strerror}") from None


def _write_catalog(path: str, sim: Simulation) -> None:
    try:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as handle:
            for item in sim.catalog:
                handle.write(json.dumps(item.catalog_row(), ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the catalog to {path}: {exc.strerror}") from None


async def _ensure_topics(servers: str, settings: Settings) -> None:
    """Create missing input topics (erasure included) with the worker's partition count."""
    names = [settings.topic(k) for k in INPUT_KINDS]
    await ensure_topics(settings, names, settings.partitions, settings.replication)


async def _produce(
    sim: Simulation,
    settings: Settings,
    writer: _Writer | None,
    stats: _Stats,
    *,
    pace: bool,
    create_topics: bool,
) -> None:
    from aiokafka.errors import KafkaError

    servers = bootstrap_servers(settings.broker)
    topics = {kind: settings.topic(kind) for kind in KINDS}
    producer = make_producer(settings, linger_ms=5)  # the settings carry any SASL/TLS options
    try:
        if create_topics:
            await _ensure_topics(servers, settings)
        await producer.start()
    except BrokerError:
        await producer.stop()
        raise
    except (KafkaError, OSError) as exc:
        await producer.stop()
        raise BrokerError(f"cannot reach the Kafka broker at {servers}: {exc}") from None
    loop = asyncio.get_running_loop()
    start_ms = sim.config.start_ms
    t0 = loop.time()
    pending: list[tuple[str, asyncio.Future[Any]]] = []

    async def drain() -> None:
        for kind, future in pending:
            try:
                await future
            except KafkaError as exc:
                raise BrokerError(f"producing to {topics[kind]} failed: {exc}") from None
            stats.sent[kind] += 1
        pending.clear()

    try:
        for message in sim.messages():
            if pace:
                delay = t0 + (message.ts - start_ms) / 1000.0 - loop.time()
                if delay > 0.001:
                    await asyncio.sleep(delay)
            if writer is not None:
                writer.write(message, stats)
            future = await producer.send(topics[message.kind], message.value, key=message.key)
            pending.append((message.kind, future))
            stats.note(message)
            if len(pending) >= 5000:
                await drain()
        await producer.flush()
        await drain()
    finally:
        await producer.stop()


def _setup_logging(settings: Settings) -> int:
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise ConfigError(f"unknown log level {settings.log_level!r}")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    return level


@contextmanager
def _quiet_aiokafka(level: int) -> Iterator[None]:
    """Broker failures surface as one BrokerError line; aiokafka's retry chatter only at debug."""
    logger = logging.getLogger("aiokafka")
    before = logger.level
    if level > logging.DEBUG:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(before)


def _summary(sim: Simulation, stats: _Stats, *, produced: bool, settings: Settings) -> str:
    truth = sim.truth()
    kinds = " ".join(f"{k}={truth['counts'].get(k, 0)}" for k in KINDS)
    span = (truth["last_ts"] or sim.config.start_ms) - sim.config.start_ms
    text = (
        f"simulated {stats.events} events ({kinds}) and {stats.bad} bad values for "
        f"{sim.config.n_users} users over {len(sim.catalog)} items, "
        f"{span / 1000:.1f} s of simulated time, seed {sim.config.seed}"
    )
    if produced:
        took = time.monotonic() - stats.started
        total = sum(stats.sent.values())
        text += (
            f"\nproduced {total} values to {', '.join(settings.topic(k) for k in KINDS)} "
            f"in {took:.1f} s ({total / max(took, 1e-9):.0f}/s)"
        )
    if stats.bad_skipped:
        text += (
            f"\n{stats.bad_skipped} bad values not written to the merged events file "
            "(use a directory or --produce to keep them)"
        )
    return text


@click.command()
@seed_option("random seed")
@users_option("number of users")
@click.option("--items", type=int, default=500, show_default=True, help="catalog size")
@click.option(
    "--events",
    type=int,
    default=None,
    help=f"events to generate [default: {DEFAULT_EVENTS} unless --duration is given]",
)
@click.option(
    "--duration",
    type=float,
    default=None,
    help="stop after this many seconds of simulated time (= real time when paced)",
)
@click.option(
    "--rate",
    type=float,
    default=DEFAULT_RATE,
    show_default=True,
    help="events per second of simulated time, and of real time with --produce; "
    f"0 = produce as fast as possible (simulated clock at {DEFAULT_RATE:g}/s)",
)
@click.option(
    "--mix",
    default="clicks=0.6,chats=0.25,reviews=0.15",
    show_default=True,
    help="shares of the event kinds",
)
@click.option("--catalog-out", type=str, default=None, help="write the catalog (JSON lines)")
@click.option(
    "--events-out",
    type=str,
    default=None,
    help="a directory (DIR/reviews.jsonl, chats.jsonl, clicks.jsonl: raw topic values) "
    "or a .jsonl file (merged: {kind, key, value} per line); '-' = stdout "
    "[default: stdout unless --produce]",
)
@click.option(
    "--truth-out",
    type=str,
    default=None,
    help="write the ground truth JSON (latent tastes, moods, item categories)",
)
@click.option("--produce", is_flag=True, help="send to the Kafka topics, keyed by user_id")
@click.option(
    "--bad-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="chance of a bad value (malformed JSON, unknown action, oversize text, "
    "non-UTF-8, schema) after each event, for the dead-letter path",
)
@click.option(
    "--start-ms",
    type=int,
    default=None,
    help=f"ts of the first event, epoch ms [default: now with --produce, else {DEFAULT_START_MS}]",
)
@click.option(
    "--id-prefix",
    type=str,
    default=None,
    help="prefix of event and session ids [default: sim<seed>-]; change it to produce "
    "the same seed twice without the worker dropping duplicates",
)
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="with --produce, create missing topics with --partitions partitions",
)
@settings_options
def simulate(
    seed: int,
    users: int,
    items: int,
    events: int | None,
    duration: float | None,
    rate: float,
    mix: str,
    catalog_out: str | None,
    events_out: str | None,
    truth_out: str | None,
    produce: bool,
    bad_rate: float,
    start_ms: int | None,
    id_prefix: str | None,
    create_topics: bool,
    **kwargs: Any,
) -> None:
    """Generate a music-gear catalog and a seeded stream of reviews, chats and clicks.

    Users have hidden tastes (a few liked categories) and moods that drift, with sad, angry,
    fearful and joyful spells; clicks follow taste x popularity, reviews follow satisfaction and
    chats follow mood. --truth-out records those hidden causes so tests can score recovery.
    """
    settings = pop_settings(kwargs)
    level = _setup_logging(settings)
    if rate < 0:
        raise ConfigError(f"--rate must be >= 0, got {rate:g}")
    if events is None and duration is None:
        events = DEFAULT_EVENTS
    if start_ms is None:
        start_ms = int(time.time() * 1000) if produce else DEFAULT_START_MS
    config = SimConfig(
        seed=seed,
        n_users=users,
        n_items=items,
        n_events=events,
        duration_s=duration,
        rate=rate or DEFAULT_RATE,
        mix=parse_mix(mix),
        start_ms=start_ms,
        bad_rate=bad_rate,
        id_prefix=id_prefix,
    )
    sim = Simulation(config)
    if catalog_out:
        _write_catalog(catalog_out, sim)
    stats = _Stats()
    interrupted = False
    with ExitStack() as stack:
        try:
            if produce:
                writer = _Writer(events_out, stack) if events_out else None
                job = _produce(
                    sim, settings, writer, stats, pace=rate > 0, create_topics=create_topics
                )
                with _quiet_aiokafka(level):
                    asyncio.run(job)
            else:
                writer = _Writer(events_out or "-", stack)
                for message in sim.messages():
                    writer.write(message, stats)
                    stats.note(message)
        except KeyboardInterrupt:
            interrupted = True
        except BrokenPipeError:  # `moodstream simulate | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
    if truth_out:
        _write_json(truth_out, sim.truth(), "the ground truth")
    click.echo(_summary(sim, stats, produced=produce, settings=settings), err=True)
    if interrupted:
        click.echo("interrupted", err=True)
        sys.exit(130)
