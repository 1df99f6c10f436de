"""Drive a real ``moodstream worker`` process against the real broker: produce, consume, restart."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from stream.adapters.kafka import ensure_topics


@dataclass
class WorkerProcess:
    """``moodstream worker`` in a subprocess, configured only through MOODSTREAM_* variables."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = field(default=0)

    def start(self, timeout: float = 90.0) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self.starts += 1
        handle = self.log_path.open("ab")
        handle.write(f"\n==== start {self.starts} ====\n".encode())
        handle.flush()
        offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from stream.cli import main; main()", "worker"],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_bytes()[offset:].decode("utf-8", "replace")
            if "Ready" in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{text[-4000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")


def worker_env(broker_url: str, name: str, tmp: Path, **overrides: Any) -> dict[str, str]:
    values: dict[str, Any] = {
        "broker": broker_url,
        "app_id": f"{name}-app",
        "topic_prefix": f"{name}.",
        "partitions": 2,
        "web_port": 0,
        "batch_wait_ms": 10,
        "recommend_interval_ms": 0,
        "data_dir": str(tmp / "worker"),
        "log_level": "info",
    }
    values.update(overrides)
    return {f"MOODSTREAM_{k.upper()}": str(v) for k, v in values.items()}


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int = 2) -> None:
    await ensure_topics(bootstrap, names, partitions)


async def produce(
    bootstrap: str, topic: str, values: Iterable[bytes | Mapping[str, Any]], key: str | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            raw = value if isinstance(value, bytes) else json.dumps(value).encode()
            k = key if key is not None or isinstance(value, bytes) else value.get("user_id")
            await producer.send_and_wait(topic, raw, key=k.encode() if k else None)
    finally:
        await producer.stop()


async def consume(
    bootstrap: str, topic: str, *, until: Any = None, timeout: float = 60.0, min_count: int = 0
) -> list[tuple[bytes | None, Any]]:
    """Read a topic from the beginning until ``until(records)`` holds or the timeout passes."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[tuple[bytes | None, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for msgs in batch.values():
                for m in msgs:
                    value = None if m.value is None else json.loads(m.value)
                    records.append((m.key, value))
            done = until(records) if until is not None else min_count > 0
            if done and len(records) >= min_count:
                break
        return records
    finally:
        await consumer.stop()


def run(coro: Any) -> Any:
    return asyncio.run(coro)
