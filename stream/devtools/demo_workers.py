"""The demo's worker processes: one, or N in one consumer group (``moodstream demo --workers N``).

Each worker is a real ``moodstream worker`` subprocess configured through its ``MOODSTREAM_*``
environment, so the demo runs exactly what a deployment runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

from stream.errors import ConfigError
from stream.settings import Settings


@dataclass(frozen=True)
class DemoWorker:
    """One worker process, with the settings it was started with and the log it writes."""

    name: str
    settings: Settings
    proc: subprocess.Popen[bytes]
    log_path: Path

    def failure(self) -> str | None:
        """None while it runs; else the one line saying how it ended."""
        if self.proc.poll() is None:
            return None
        who = "the worker" if self.name == "worker" else f"worker {self.name}"
        return f"{who} exited ({self.proc.returncode}): {last_line(self.log_path)}"


def worker_settings(settings: Settings, ports: list[int]) -> list[Settings]:
    """One worker's settings per web port. A single worker runs with ``settings`` as they are
    (``make demo`` as before); several share the consumer group and the index cache (the data
    dir's parent) but each gets its own port, data dir and static-membership instance id."""
    if not ports:
        raise ConfigError("the demo needs at least one worker")
    if len(ports) > settings.partitions:
        raise ConfigError(
            f"--workers {len(ports)} needs at least {len(ports)} partitions, not "
            f"--partitions {settings.partitions}: a worker beyond the partition count owns nothing"
        )
    if len(ports) == 1:
        return [settings.replace(web_port=ports[0])]
    base = settings.instance_id or "demo"
    return [
        settings.replace(
            web_port=port,
            data_dir=f"{settings.data_dir}-{n}",
            instance_id=f"{base}-{n}",
        )
        for n, port in enumerate(ports, start=1)
    ]


def worker_name(settings: Settings) -> str:
    """What the view calls a worker: its instance id, or plain ``worker`` when it has none."""
    return settings.instance_id or "worker"


def start_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    for f in fields(Settings):
        env[f"MOODSTREAM_{f.name.upper()}"] = str(getattr(settings, f.name))
    handle = log_path.open("ab")
    return subprocess.Popen(
        [sys.executable, "-c", "from stream.cli import main; main()", "worker"],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def launch(settings: Settings, work_dir: Path, *, alone: bool) -> DemoWorker:
    """Start one worker; its log is ``worker.log`` when it runs ``alone``, else named by id."""
    name = worker_name(settings)
    log_path = work_dir / ("worker.log" if alone else f"{name}.log")
    return DemoWorker(name, settings, start_worker(settings, log_path), log_path)


def last_line(log_path: Path) -> str:
    """The worker's last log line (its own ``moodstream: error:`` line when it refused)."""
    lines = log_path.read_text("utf-8", "replace").strip().splitlines() or ["(empty log)"]
    return lines[-1].removeprefix("moodstream: error: ") + f" (log: {log_path})"


def stop_workers(workers: list[DemoWorker], grace: float = 30.0) -> None:
    """SIGTERM all at once (each commits and flushes), then wait; kill what outlives ``grace``."""
    running = [w for w in workers if w.proc.poll() is None]
    for worker in running:
        worker.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for worker in running:
        try:
            worker.proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()
