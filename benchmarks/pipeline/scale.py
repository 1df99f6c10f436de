"""The scale-out phases (issue 12): the framework floor on the clicks topic, two workers.

- ``floor``: ``benchmarks/floor.py``'s ``table_send`` Faust worker (consume, one 2 KB table write
  and one 1 KB send per event; no moodstream code) drains the very clicks topic the ``clicks``
  phase drains, on the same broker, in its own consumer group: clicks-only events/s over this
  figure, measured in the same run, is the share of the framework floor the worker reaches.
- ``clicks2``: the same clicks, on topics of their own, drained by two ``moodstream worker``
  processes in one consumer group (distinct web ports, data dirs and instance ids); the clicks
  are produced once both workers own their share of the partitions, so no rebalance falls into
  the measurement. Both ``/metrics`` are scraped; the summed rate, each worker's and each
  board's item-state freshness are reported.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.common import CpuWindow, Worker, scrape
from benchmarks.pipeline.config import WORK, WORKER_ENV, Plan, env_of, free_port, log
from benchmarks.pipeline.drain import sample
from benchmarks.pipeline.freshness import board_freshness
from benchmarks.pipeline.load import create_topics, produce
from benchmarks.pipeline.measure import steady, summarize
from stream.settings import Settings

SUMMED = ("total", "texts", "recs", "batches", "batch_sum", "score_wait_s", "fold_s", "predict_s")
SUMMED_ALSO = ("rss_mib",)
SPLIT_STABLE_S = 6.0  # the worker measures its partitions' lag every 5 s


def children_cpu_s() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run_floor(
    broker: Any, s: Settings, events: int, run_id: str, modes: tuple[str, ...] = ("table_send",)
) -> dict[str, Any]:
    """The floor's Faust worker in each of ``modes`` on the clicks topic of ``s``."""
    from benchmarks.floor import run_mode

    out: dict[str, Any] = {}
    expected = int(0.97 * events)
    for mode in modes:
        log(f"floor: {mode} Faust worker drains {expected} clicks of {s.topic('clicks')}")
        window = CpuWindow({"broker": broker.proc.pid, "bench": os.getpid()}).start()
        before = children_cpu_s()
        got = run_mode(mode, broker.url, s.topic("clicks"), expected, f"bp{run_id}")
        cpu = window.stop()
        # The floor worker is a child reaped by run_mode: its CPU, start-up included.
        floor_cores = (children_cpu_s() - before) / cpu["wall_s"] if cpu["wall_s"] else 0.0
        cpu["floor_worker_cores"] = round(floor_cores, 2)
        cpu["others_cores"] = round(max(0.0, cpu["others_cores"] - floor_cores), 2)
        out[mode] = got | {"events": expected, "cpu": cpu, "rate": "10-90% marks, in-process"}
        log(f"floor {mode}: {got}")
    return out


def owned_partitions(port: int, topic: str) -> set[int]:
    """The partitions of ``topic`` whose lag the worker reports: the ones it owns."""
    try:
        metrics = scrape(port)
    except OSError:
        return set()
    pattern = re.compile(r'partition="(\d+)"')
    return {
        int(match.group(1))
        for key in metrics
        if key.startswith("moodstream_consumer_lag{") and f'topic="{topic}"' in key
        for match in [pattern.search(key)]
        if match
    }


def wait_split(ports: list[int], topic: str, partitions: int, timeout_s: float = 60.0) -> Any:
    """Wait until the workers own disjoint, non-empty shares of all ``partitions`` of
    ``topic``, unchanged for ``SPLIT_STABLE_S``; returns the shares (None on timeout)."""
    began = time.perf_counter()
    last: list[list[int]] | None = None
    since = began
    while time.perf_counter() - began < timeout_s:
        shares = [sorted(owned_partitions(port, topic)) for port in ports]
        now = time.perf_counter()
        flat = [p for share in shares for p in share]
        split = all(shares) and sorted(flat) == list(range(partitions))
        if shares != last:
            last, since = shares, now
        elif split and now - since >= SPLIT_STABLE_S:
            return shares
        time.sleep(0.5)
    return None


def combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One sample of the group: counters summed; CPU and machine from the first scrape."""
    out = dict(parts[0])
    for key in SUMMED + SUMMED_ALSO:
        out[key] = sum(p[key] for p in parts)
    out["per_worker"] = [p["total"] for p in parts]
    return out


def follow_group(
    workers: list[Worker], ports: list[int], pids: dict[str, int], expected: int, cap_s: float
) -> list[dict[str, Any]]:
    """Samples of the whole group every 0.2 s until ``expected`` events are folded (or the cap,
    or 30 s without progress)."""
    samples: list[dict[str, Any]] = []
    began = last_progress = time.perf_counter()
    while True:
        parts = [sample(port, pids if i == 0 else {}, w.pid) for i, (w, port) in
                 enumerate(zip(workers, ports, strict=True))]  # fmt: skip
        s = combine(parts)
        if samples and s["total"] > samples[-1]["total"]:
            last_progress = s["t"]
        samples.append(s)
        if s["total"] >= expected:
            break
        if s["t"] - began > cap_s or s["t"] - last_progress > 30:
            log(f"clicks2: stopped at {s['total']:.0f}/{expected} events (cap or stall)")
            break
        time.sleep(0.2)
    return samples


def per_worker(samples: list[dict[str, Any]], expected: int) -> list[float] | None:
    """Each worker's events/s inside the group's steady window."""
    marks = steady(samples, expected)
    if marks is None:
        return None
    a, b = samples[marks[0]], samples[marks[1]]
    dt = b["t"] - a["t"]
    if dt <= 0:
        return None
    return [round((y - x) / dt, 1) for x, y in zip(a["per_worker"], b["per_worker"], strict=True)]


def group_settings(base: Settings, name: str, n: int) -> list[Settings]:
    return [
        base.replace(
            web_port=free_port(), data_dir=str(WORK / f"w-{name}-{i}"), instance_id=f"{name}-{i}"
        )
        for i in range(1, n + 1)
    ]


def run_clicks2(
    broker: Any, base: Settings, plan: Plan, run_id: str, clicks: list[Any], n: int = 2
) -> dict[str, Any]:
    """``clicks`` drained by ``n`` workers of one group, produced once the partitions are split."""
    from benchmarks.pipeline.config import worker_settings

    name = f"bp{run_id}ck{n}"
    shared = worker_settings(base, name, WORK, broker=broker.url)
    asyncio.run(create_topics(broker.bootstrap, shared))
    settings = group_settings(shared, name, n)
    workers = [
        Worker(env_of(s) | WORKER_ENV, WORK / "logs" / f"clicks{n}-{i}.log")
        for i, s in enumerate(settings, 1)
    ]
    ports = [s.web_port for s in settings]
    produced: dict[str, Any] = {}

    def produce_all() -> None:
        produced["s"] = round(asyncio.run(produce(broker.bootstrap, shared, clicks)), 1)

    try:
        with ThreadPoolExecutor(n) as pool:
            ready = list(pool.map(lambda w: w.start(), workers))
        log(f"clicks{n}: {n} workers ready; waiting for the partition split")
        shares = wait_split(ports, shared.topic("clicks"), shared.partitions)
        log(f"clicks{n}: clicks partitions per worker {shares}; producing {len(clicks)} clicks")
        pids = {f"worker_{i}": w.pid for i, w in enumerate(workers, 1)}
        pids |= {"broker": broker.proc.pid, "bench": os.getpid()}
        producer = threading.Thread(target=produce_all)
        producer.start()
        samples = follow_group(workers, ports, pids, len(clicks), plan.phase_cap_s)
        producer.join()
        fresh = [board_freshness(port) for port in ports]
    finally:
        for w in workers:
            w.stop()
    out = summarize(samples, len(clicks))
    if "cpu" in out:
        out["cpu"]["worker_cores"] = round(
            sum(v for k, v in out["cpu"].items() if k.startswith("worker_")), 2
        )
    out |= {
        "workers": n,
        "events_per_s_per_worker": per_worker(samples, len(clicks)),
        "partitions_per_worker": shares,
        "freshness_per_worker": fresh,
        "produce_s": produced.get("s"),
        "ready_s": [round(r, 1) for r in ready],
    }
    return out


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """The run's ratios: clicks vs the floor, two workers vs one."""
    out: dict[str, float] = {}
    floor = result.get("floor", {}).get("table_send", {}).get("steady_events_per_s")
    one = result.get("clicks", {}).get("events_per_s")
    two = result.get("clicks2", {}).get("events_per_s")
    if floor and one:
        out["clicks_vs_floor_table_send"] = round(one / floor, 3)
    if floor and two:
        out["clicks2_per_worker_vs_floor_table_send"] = round(two / 2 / floor, 3)
    if one and two:
        out["clicks2_vs_clicks"] = round(two / one, 3)
    unranked = result.get("clicks_unranked", {}).get("events_per_s")
    if floor and unranked:
        out["clicks_unranked_vs_floor_table_send"] = round(unranked / floor, 3)
    return out
