"""The command line and the orchestration of one pipeline benchmark run."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks.common import busy_processes, machine, utc_now
from benchmarks.pipeline.config import (
    FULL,
    QUICK,
    REVIEWS_ZIP,
    TARGETS,
    WORK,
    WORKER_ENV,
    Plan,
    code_version,
    log,
    parse_overrides,
    prepare_index,
)
from benchmarks.pipeline.events import make_events, texts_of
from stream.settings import Settings

SETTINGS_SHOWN = (
    "batch_size",
    "batch_events",
    "batch_wait_ms",
    "linger_ms",
    "recommend_interval_ms",
    "intra_op_threads",
    "score_threads",
    "partitions",
    "store",
    "model_variant",
    "providers",
    "top_k",
    "candidates",
    "dedup_window_s",
)


def build_parser() -> argparse.ArgumentParser:
    from benchmarks import pipeline

    doc = pipeline.__doc__ or ""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.pipeline", description=doc.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (about 3 minutes)")
    parser.add_argument(
        "--only",
        default="ceiling,mixed,floor,clicks,unranked,clicks2,latency,memory",
        help="phases, comma-separated (they run in this order whatever the order given)",
    )
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile the clicks-only worker (auto: when below target)",
    )
    parser.add_argument(
        "--reviews",
        choices=("sim", "amazon"),
        default="sim",
        help="review bodies: simulator texts or real Amazon reviews",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="worker setting override (repeatable)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment variable of every worker (repeatable)",
    )
    parser.add_argument(
        "--blas-check",
        choices=("auto", "always", "never"),
        default="never",
        help="rerun mixed and clicks with OPENBLAS_NUM_THREADS=1 forced (auto: below target); "
        "moot since `moodstream` sets it itself",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=0.0,
        help="events/s for the latency run (default: half the mixed rate)",
    )
    parser.add_argument("--mixed-events", type=int)
    parser.add_argument("--click-events", type=int)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--core-child", nargs=3, help=argparse.SUPPRESS)
    return parser


def run_child(args: argparse.Namespace) -> None:
    """The core-only and memory children: one JSON line on stdout."""
    if args.core_child:
        from benchmarks.pipeline.core import measure_core_clicks

        index_dir, n, users = args.core_child
        events = make_events(int(n), int(users), "clicks=1", "core-", "sim")
        print(json.dumps(measure_core_clicks(Path(index_dir), events, Settings())))
    else:
        from benchmarks.pipeline.memory import memory_child

        index_dir, users, sample, per_user = args.memory_child
        print(json.dumps(memory_child(index_dir, int(users), int(sample), int(per_user))))


def make_plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    if args.mixed_events:
        plan = replace(plan, mixed_events=args.mixed_events)
    if args.click_events:
        plan = replace(plan, click_events=args.click_events)
    if args.reviews == "amazon" and not REVIEWS_ZIP.is_file():
        raise SystemExit(f"--reviews amazon needs {REVIEWS_ZIP}")
    for pair in args.worker_env:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--worker-env wants NAME=VALUE, got {pair!r}")
        WORKER_ENV[name] = value
    return plan


def run_header(base: Settings, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """What every result starts with: machine, load, plan, settings, code."""
    result: dict[str, Any] = {
        "date": utc_now(),
        "machine": machine(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "busy_before": busy_processes(),
        "plan": asdict(plan) | {"quick": args.quick, "reviews": args.reviews},
        "settings": {k: getattr(base, k) for k in SETTINGS_SHOWN},
        "targets": TARGETS,
        "worker_env": dict(WORKER_ENV),
        "code": code_version(),
    }
    if result["busy_before"]:
        log("other busy processes: " + " | ".join(result["busy_before"]))
    return result


def run_ceiling(result: dict[str, Any], base: Settings, plan: Plan, events: list[Any]) -> None:
    """The model alone at batch 32, then at the batch a worker actually passes."""
    from benchmarks.pipeline.ceiling import measure_ceiling

    texts = texts_of(events)
    log(f"ceiling: {len(texts)} review+chat texts, batch 32, {plan.ceiling_s:.0f} s")
    result["ceiling"] = measure_ceiling(base, texts, plan.ceiling_s)
    log(f"ceiling: {result['ceiling']['texts_per_s_median']} texts/s")
    share = len(texts) / len(events)
    # A worker takes up to batch_events events and scores their texts batch_size at a time.
    small = max(1, min(base.batch_size, round(base.batch_events * share)))
    result["ceiling_at_worker_batch"] = measure_ceiling(
        base, texts, plan.ceiling_s / 3, batch=small
    ) | {"why": f"batch_size {base.batch_size} events x {share:.2f} texts per event"}
    log(
        f"ceiling at batch {small}: "
        f"{result['ceiling_at_worker_batch']['texts_per_s_median']} texts/s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.core_child or args.memory_child:
        run_child(args)
        return 0
    plan = make_plan(args)
    only = set(args.only.split(","))
    WORK.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%H%M%S")
    base = Settings(
        store="memory://", model_variant="int8", providers="cpu", log_level="info"
    ).replace(**parse_overrides(args.set))
    base = base.replace(data_dir=str(WORK / "w-prep"))
    started = time.perf_counter()
    result = run_header(base, plan, args)
    mixed_events = make_events(
        plan.mixed_events,
        plan.users,
        "clicks=0.6,chats=0.25,reviews=0.15",
        f"mx{run_id}-",
        args.reviews,
    )
    result["mix"] = dict(Counter(k for k, _ in mixed_events))
    if "ceiling" in only:
        run_ceiling(result, base, plan, mixed_events)
    index_dir = prepare_index(base)
    if only & {"mixed", "floor", "clicks", "unranked", "clicks2", "latency"}:
        from benchmarks.pipeline.phases import run_broker_phases

        run_broker_phases(result, only, base, plan, run_id, mixed_events, index_dir, args)
    if "memory" in only:
        from benchmarks.pipeline.memory import measure_memory

        log(
            f"memory: {plan.mem_sample_users} users' history folded, tables of "
            f"{plan.mem_users} users"
        )
        result["memory"] = measure_memory(index_dir, plan)
        log(f"memory: {json.dumps(result['memory'])}")
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["busy_after"] = busy_processes()
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    from benchmarks.pipeline.report import finish

    finish(result, write=not args.no_write)
    return 0
