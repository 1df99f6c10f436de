"""``moodstream worker``: the Faust agents until SIGTERM/Ctrl-C (graceful: offsets committed).

Before Faust starts, a RocksDB worker locks its data directory (one worker per directory); then
the worker reaches the broker (one line and exit 2 if it cannot), refuses topics whose partition
counts break co-partitioning and creates the missing ones, so no client ever makes a 1-partition
topic by accident and Faust never meets a PartitionsMismatch later.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Any

import click

from stream.cli.options import pop_settings, settings_options
from stream.errors import MoodstreamError


class WorkerCrashed(MoodstreamError):
    """The Faust worker stopped on an error: its last line says which."""


@click.command()
@settings_options
def worker(**kwargs: Any) -> None:
    """Consume reviews, chats, clicks and erasures; emit recommendations and dead letters."""
    settings = pop_settings(kwargs)
    lock = _lock_data_dir(settings.data_dir) if settings.store.startswith("rocksdb") else None
    from stream.adapters.kafka import prepare_worker_topics

    kafka_log = logging.getLogger("aiokafka")
    kafka_log.setLevel(logging.CRITICAL)  # the check reports an unreachable broker in one line
    try:
        created = asyncio.run(prepare_worker_topics(settings))
    finally:
        kafka_log.setLevel(logging.NOTSET)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    from faust.worker import Worker

    from stream.devtools.demo_index import with_demo_index
    from stream.worker.app import make_app

    log = logging.getLogger("moodstream.worker")
    if created:
        log.info(
            "created %d topic(s) with %d partition(s): %s",
            len(created),
            settings.partitions,
            ", ".join(created),
        )
    _make_data_dir(settings.data_dir)
    settings = with_demo_index(settings)
    made = make_app(settings)
    processor = made.processor
    log.info(
        "worker %s: broker %s, store %s, model %s on %s, index %s (%d items)",
        settings.app_id,
        settings.broker,
        settings.store,
        processor.model.version,
        getattr(processor.model, "provider", "?"),
        processor.index.version,
        len(processor.index.ids()),
    )
    runner = Worker(made.app, loglevel=settings.log_level, quiet=True)
    try:
        runner.execute_from_commandline()
    except SystemExit as exit_:
        reason = runner.crash_reason or made.app.crash_reason
        if exit_.code not in (0, None) or reason is not None:
            raise WorkerCrashed(f"the worker crashed: {_describe(reason, exit_.code)}") from None
        raise
    finally:
        if lock is not None:
            lock.close()


def _make_data_dir(path: str) -> None:
    """Faust creates only the last folder of its data directory (and crashes on a missing
    parent); a fresh machine or volume has none of them."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MoodstreamError(f"cannot create the data directory {path}: {exc.strerror}") from None


def _lock_data_dir(path: str) -> IO[str]:
    """RocksDB opens a partition's database for one process only. Two workers on one data
    directory each open some partitions and, at the next rebalance, both crash on the other's
    lock (seen by hand); so the second is refused at start and the first serves on. The kernel
    drops the lock with the process, so a restart after SIGKILL takes it again."""
    _make_data_dir(path)
    lock = open(Path(path) / "worker.lock", "a+", encoding="utf-8")  # noqa: SIM115 (held till exit)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip()
        lock.close()
        raise MoodstreamError(
            f"the data directory {path} is in use by another worker"
            + (f" (pid {holder})" if holder else "")
            + "; give each worker on this machine its own --data-dir (MOODSTREAM_DATA_DIR)"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


def _describe(reason: BaseException | None, code: Any) -> str:
    if reason is None:
        return f"exit status {code} (see the log above)"
    text = " ".join(str(reason).split())
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
