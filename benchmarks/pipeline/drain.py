"""2/3. Sustained throughput: a worker process drains pre-produced topics while its
``/metrics`` are scraped."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Worker, machine_cpu_s, metric_sum, proc_cpu_s, proc_rss_mib, scrape
from benchmarks.pipeline.config import PROGRESS, WORK, WORKER_ENV, env_of, log
from benchmarks.pipeline.freshness import board_freshness
from benchmarks.pipeline.measure import summarize
from stream.settings import Settings

PROFILE_CODE = """
import cProfile, signal
_prof = cProfile.Profile()
def _on(*_):
    _prof.enable()
def _off(*_):
    _prof.disable()
    _prof.dump_stats({path!r})
signal.signal(signal.SIGRTMIN + 1, _on)
signal.signal(signal.SIGRTMIN + 2, _off)
from stream.cli import main
main()
"""


def sample(port: int, pids: dict[str, int], worker_pid: int) -> dict[str, Any]:
    """One scrape of the worker's ``/metrics`` with the CPU seconds of ``pids`` and the machine."""
    try:
        m = scrape(port)
    except OSError:
        m = {}
    now = time.perf_counter()
    texts = sum(
        v
        for k, v in m.items()
        if k.startswith("moodstream_events_total") and ('"reviews"' in k or '"chats"' in k)
    )
    return {
        "t": now,
        "total": sum(metric_sum(m, p) for p in PROGRESS),
        "texts": texts,
        "recs": m.get("moodstream_recommendations_total", 0.0),
        "batches": m.get("moodstream_batch_size_count", 0.0),
        "batch_sum": m.get("moodstream_batch_size_sum", 0.0),
        "score_wait_s": m.get("moodstream_score_wait_seconds_total", 0.0),
        "fold_s": m.get("moodstream_fold_seconds_total", 0.0),
        "predict_s": m.get("moodstream_inference_predict_seconds_sum", 0.0),
        "cpu": {k: proc_cpu_s(p) for k, p in pids.items()},
        "machine": machine_cpu_s()[0],
        "rss_mib": proc_rss_mib(worker_pid),
    }


def follow(
    worker: Worker,
    pids: dict[str, int],
    port: int,
    expected: int,
    cap_s: float,
    label: str,
    profiled: bool,
) -> list[dict[str, Any]]:
    """Samples every 0.2 s until all ``expected`` events are folded (or the cap, or a stall);
    when ``profiled``, the profiler runs from the 5% mark to the 85% mark or for <= 30 s."""
    samples: list[dict[str, Any]] = []
    began = time.perf_counter()
    last_progress = began
    profiling = "off" if profiled else None
    profile_on = 0.0
    while True:
        s = sample(port, pids, worker.pid)
        now, total = s["t"], s["total"]
        if samples and total > samples[-1]["total"]:
            last_progress = now
        samples.append(s)
        if profiling == "off" and total >= 0.05 * expected:
            os.kill(worker.pid, signal.SIGRTMIN + 1)
            profiling, profile_on = "on", now
            log(f"{label}: profiler on at {total:.0f} events")
        if profiling == "on" and (total >= 0.85 * expected or now - profile_on > 30):
            os.kill(worker.pid, signal.SIGRTMIN + 2)
            profiling = "dumped"
            log(f"{label}: profiler off at {total:.0f} events")
            break  # the profile is what this run is for
        if total >= expected:
            break
        if now - began > cap_s or now - last_progress > 30:
            log(f"{label}: stopped at {total:.0f}/{expected} events (cap or stall)")
            break
        time.sleep(0.2)
    if profiling == "on":
        os.kill(worker.pid, signal.SIGRTMIN + 2)
    return samples


def drain(
    broker: Any,
    settings: Settings,
    expected: int,
    cap_s: float,
    label: str,
    profile_to: Path | None = None,
    extra_env: dict[str, str] | None = None,
    freshness: bool = False,
) -> dict[str, Any]:
    """Start a worker on pre-produced topics and follow its progress until all are folded;
    with ``freshness``, the p99 of its board's item-state freshness once its board settled."""
    code = (
        PROFILE_CODE.format(path=str(profile_to))
        if profile_to is not None
        else "from stream.cli import main; main()"
    )
    worker = Worker(
        env_of(settings) | WORKER_ENV | (extra_env or {}),
        WORK / "logs" / f"{label}.log",
        python_code=code,
    )
    ready_s = worker.start()
    pids = {"worker": worker.pid, "broker": broker.proc.pid, "bench": os.getpid()}
    try:
        samples = follow(
            worker, pids, settings.web_port, expected, cap_s, label, profile_to is not None
        )
        if profile_to is not None:
            for _ in range(50):
                if profile_to.exists():
                    break
                time.sleep(0.1)
        fresh = board_freshness(settings.web_port) if freshness else None
    finally:
        worker.stop()
    out = summarize(samples, expected)
    if fresh is not None:
        out["freshness"] = fresh
    out["ready_s"] = round(ready_s, 1)
    return out
