"""The broker phases: mixed, clicks (with its diagnostics) and latency."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, CpuWindow, Worker
from benchmarks.pipeline.config import (
    TARGETS,
    WORK,
    WORKER_ENV,
    Plan,
    env_of,
    free_port,
    log,
    worker_settings,
)
from benchmarks.pipeline.core import core_child
from benchmarks.pipeline.drain import drain
from benchmarks.pipeline.events import make_events
from benchmarks.pipeline.load import create_topics, paced, produce
from benchmarks.pipeline.measure import profile_report
from stream.settings import Settings

UNRANKED_MS = 10**9  # longer than any run: a user's first click is ranked, no later one


def drain_phase(
    broker: Any, settings: Settings, events: list[tuple[str, dict[str, Any]]], cap_s: float,
    label: str,
) -> dict[str, Any]:  # fmt: skip
    """Topics created, ``events`` produced, then one worker drains them."""
    asyncio.run(create_topics(broker.bootstrap, settings))
    produce_s = asyncio.run(produce(broker.bootstrap, settings, events))
    log(f"{label}: produced {len(events)} events in {produce_s:.1f} s")
    out = drain(broker, settings, len(events), cap_s, label)
    return out


def variant_settings(s: Settings, tag: str) -> Settings:
    """Another worker (own group, port and data dir) on the same topics."""
    return s.replace(app_id=f"{tag}-app", web_port=free_port(), data_dir=str(WORK / f"w-{tag}"))


def with_ceiling(run: dict[str, Any], ceiling: float | None) -> dict[str, Any]:
    if ceiling and "texts_per_s" in run:
        run["texts_vs_ceiling"] = round(run["texts_per_s"] / ceiling, 3)
    return run


def blas_wanted(args: Any, below: bool) -> bool:
    return "OPENBLAS_NUM_THREADS" not in WORKER_ENV and (
        args.blas_check == "always" or (args.blas_check == "auto" and below)
    )


def run_mixed(
    broker: Any, base: Settings, plan: Plan, run_id: str, events: list[Any], ceiling: float | None,
    args: Any,
) -> dict[str, Any]:  # fmt: skip
    """The mixed drain; below target (or ``--blas-check always``) again with one BLAS thread."""
    out: dict[str, Any] = {}
    s = worker_settings(base, f"bp{run_id}mx", WORK, broker=broker.url)
    out["mixed"] = with_ceiling(drain_phase(broker, s, events, plan.phase_cap_s, "mixed"), ceiling)
    log(f"mixed: {json.dumps(out['mixed'])}")
    ratio = out["mixed"].get("texts_vs_ceiling", 1.0)
    if blas_wanted(args, ratio < TARGETS["pipeline_vs_ceiling"]):
        bs = variant_settings(s, f"bp{run_id}mx-blas1")
        log("mixed: again with OPENBLAS_NUM_THREADS=1 (diagnostic)")
        mb = drain(
            broker, bs, len(events), 0.75 * plan.phase_cap_s, "mixed-blas1",
            extra_env={"OPENBLAS_NUM_THREADS": "1"},
        )  # fmt: skip
        out["mixed_openblas_1_thread"] = with_ceiling(mb, ceiling)
        log(f"mixed, OPENBLAS_NUM_THREADS=1: {json.dumps(mb)}")
    return out


def profile_clicks(
    broker: Any, s: Settings, plan: Plan, run_id: str, expected: int,
    variants: list[tuple[str, dict[str, str]]],
) -> dict[str, Any]:  # fmt: skip
    """cProfile of a second clicks worker on the same topics, per BLAS variant."""
    out: dict[str, Any] = {}
    for label, env in variants:
        prof_path = WORK / f"clicks-{run_id}-{label}.prof"
        prof_path.unlink(missing_ok=True)
        ps = variant_settings(s, f"bp{run_id}ck-prof-{label.replace('_', '-')}")
        log(f"clicks: profiling a worker on the same topics (cProfile, {label})")
        run = drain(
            broker, ps, expected, plan.phase_cap_s, f"clicks-prof-{label}",
            profile_to=prof_path, extra_env=env,
        )  # fmt: skip
        report = profile_report(prof_path) if prof_path.exists() else {}
        out[label] = {
            "env": env,
            "run": run,
            **report,
            "file": str(prof_path.relative_to(ROOT)),
            "timer": "wall clock, the worker's main thread (the event loop)",
        }
    return out


def clicks_below(run: dict[str, Any], floor: float | None) -> bool:
    """Below target: under 0.65 of the floor's table_send rate (without a floor, 3000/s)."""
    rate = run.get("events_per_s", 0)
    if floor:
        return bool(rate / floor < TARGETS["clicks_vs_floor"])
    return bool(rate < TARGETS["clicks_events_per_s"])


def run_clicks(
    broker: Any, s: Settings, clicks: list[Any], plan: Plan, run_id: str, index_dir: Path,
    args: Any, floor: float | None,
) -> dict[str, Any]:  # fmt: skip
    """Clicks-only drain of the produced ``clicks`` (with the board's freshness); below target
    also: the same with OPENBLAS_NUM_THREADS=1, cProfile of both, and the Processor alone (no
    Kafka, no Faust) with both BLAS settings."""
    out: dict[str, Any] = {}
    out["clicks"] = drain(broker, s, len(clicks), plan.phase_cap_s, "clicks", freshness=True)
    log(f"clicks: {json.dumps(out['clicks'])}")
    below = clicks_below(out["clicks"], floor)
    blas1 = {"OPENBLAS_NUM_THREADS": "1"}
    variants: list[tuple[str, dict[str, str]]] = [("default", {})]
    if blas_wanted(args, below):
        variants.append(("openblas_1_thread", blas1))
        bs = variant_settings(s, f"bp{run_id}ck-blas1")
        log("clicks: again with OPENBLAS_NUM_THREADS=1 (diagnostic)")
        out["clicks_openblas_1_thread"] = drain(
            broker, bs, len(clicks), plan.phase_cap_s, "clicks-blas1", extra_env=blas1
        )
        log(f"clicks, OPENBLAS_NUM_THREADS=1: {json.dumps(out['clicks_openblas_1_thread'])}")
    if args.profile == "always" or (args.profile == "auto" and below):
        out["clicks_profile"] = profile_clicks(broker, s, plan, run_id, len(clicks), variants)
    core = {}
    for label, env in variants:
        core[label] = core_child(index_dir, plan.core_events, plan.users, env)
        log(f"clicks, Processor alone ({label}): {json.dumps(core[label])}")
    out["clicks_core"] = core
    return out


def run_unranked(
    broker: Any, s: Settings, expected: int, plan: Plan, run_id: str
) -> dict[str, Any]:
    """The same clicks drained with each user ranked once (``recommend_interval_ms`` beyond the
    run): every other per-click step stays, so this rate bounds what any faster ranker can
    give."""
    us = variant_settings(s, f"bp{run_id}ck-unranked").replace(recommend_interval_ms=UNRANKED_MS)
    out = drain(broker, us, expected, plan.phase_cap_s, "clicks-unranked")
    out["recommend_interval_ms"] = UNRANKED_MS
    log(f"clicks, ranked once per user: {json.dumps(out)}")
    return out


def run_latency(
    broker: Any, base: Settings, plan: Plan, run_id: str, rate: float, reviews: str
) -> dict[str, Any]:
    """A fresh worker with ``recommend_interval_ms=0``; events paced at ``rate``."""
    s = worker_settings(base, f"bp{run_id}lt", WORK, broker=broker.url, recommend_interval_ms=0)
    asyncio.run(create_topics(broker.bootstrap, s))
    n = int(rate * plan.latency_s * 1.1) + 100
    events = make_events(
        n, plan.users, "clicks=0.6,chats=0.25,reviews=0.15", f"lt{run_id}-", reviews
    )
    worker = Worker(env_of(s) | WORKER_ENV, WORK / "logs" / "latency.log")
    worker.start()
    time.sleep(2.0)  # partitions assigned, agents waiting
    cpu = CpuWindow({"worker": worker.pid, "broker": broker.proc.pid, "bench": os.getpid()}).start()
    try:
        log(f"latency: {rate:.0f} events/s for {plan.latency_s:.0f} s, recommend_interval_ms=0")
        lat = asyncio.run(
            paced(broker.bootstrap, s, events, rate, plan.latency_s, plan.latency_warmup_s)
        )
    finally:
        lat["cpu"] = cpu.stop()
        worker.stop()
    lat["recommend_interval_ms"] = 0
    log(f"latency: {json.dumps(lat)}")
    return lat


def run_broker_phases(
    result: dict[str, Any], only: set[str], base: Settings, plan: Plan, run_id: str,
    mixed_events: list[Any], index_dir: Path, args: Any,
) -> None:  # fmt: skip
    """The phases that need Kafka, on one broker this benchmark starts; figures into ``result``."""
    from stream.devtools.broker import KafkaBroker

    with KafkaBroker(echo=log) as broker:
        assert broker.proc is not None
        log(f"broker {broker.version} at {broker.bootstrap}")
        if "mixed" in only:
            ceiling = result.get("ceiling", {}).get("texts_per_s_median")
            result.update(run_mixed(broker, base, plan, run_id, mixed_events, ceiling, args))
        if only & {"floor", "clicks", "unranked", "clicks2"}:
            run_click_phases(result, only, broker, base, plan, run_id, index_dir, args)
        if "latency" in only:
            mixed_rate = result.get("mixed", {}).get("events_per_s")
            rate = args.latency_rate or (0.5 * mixed_rate if mixed_rate else 100.0)
            result["latency"] = run_latency(broker, base, plan, run_id, rate, args.reviews)


def run_click_phases(
    result: dict[str, Any], only: set[str], broker: Any, base: Settings, plan: Plan, run_id: str,
    index_dir: Path, args: Any,
) -> None:  # fmt: skip
    """floor, clicks and clicks2 on the same clicks; floor and clicks on the very same topic."""
    from benchmarks.pipeline.scale import ratios, run_clicks2, run_floor

    clicks = make_events(plan.click_events, plan.users, "clicks=1", f"ck{run_id}-", args.reviews)
    s = worker_settings(base, f"bp{run_id}ck", WORK, broker=broker.url)
    if only & {"floor", "clicks", "unranked"}:
        asyncio.run(create_topics(broker.bootstrap, s))
        produce_s = asyncio.run(produce(broker.bootstrap, s, clicks))
        log(f"clicks: produced {len(clicks)} events in {produce_s:.1f} s")
    if "floor" in only:
        result["floor"] = run_floor(broker, s, len(clicks), run_id)
    floor = result.get("floor", {}).get("table_send", {}).get("steady_events_per_s")
    if "clicks" in only:
        result.update(run_clicks(broker, s, clicks, plan, run_id, index_dir, args, floor))
    if "unranked" in only:
        result["clicks_unranked"] = run_unranked(broker, s, len(clicks), plan, run_id)
    if "clicks2" in only:
        result["clicks2"] = run_clicks2(broker, base, plan, run_id, clicks)
        log(f"clicks2: {json.dumps(result['clicks2'])}")
    result["ratios"] = ratios(result)
    log(f"ratios: {json.dumps(result['ratios'])}")
