"""Ranking cost: microseconds per recommendation of the worker's ``recommend_many``, alone.

    .venv/bin/python benchmarks/ranking.py [--rounds 6] [--seconds 2] [--against REV]

A Processor (stub model, the demo index) folds 8,000 simulated clicks of 1,000 users; then the
last batch's triggers (about 60 users) are ranked together again and again, in half-second
windows, as the worker ranks a batch. Each round runs in a fresh process; the figure is the
best window of each round (the machine is shared: the best is what the code costs, the rest is
other load). ``--against REV`` runs the same rounds on a worktree of that commit, alternating
with this tree, so both sides see the same load, and prints the ratio. The lists' digest says
whether both sides ranked alike. Writes benchmarks/results/ranking.json and ranking.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # a round's child imports the code of the tree it runs in instead
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"


def measure(index_dir: str, seconds: float) -> dict[str, Any]:
    """One round in this process: warm the state, then time ``recommend_many`` windows."""
    from benchmarks.pipeline.core import StubModel
    from benchmarks.pipeline.events import make_events
    from stream.adapters.index import FaissItemIndex
    from stream.contract.decoding import decode
    from stream.settings import Settings
    from stream.sim.simulate import encode_value
    from stream.worker.processor import Decoded, Processor, Request

    settings = Settings()
    proc = Processor(settings, StubModel(), FaissItemIndex.load(index_dir))
    users: dict[str, Any] = {}
    items: dict[str, Any] = {}
    now = 1_764_000_000_000
    requests: list[Request] = []
    events = make_events(8000, 1000, "clicks=1", "rank-", "sim")
    for start in range(0, len(events), settings.batch_events):
        batch = [
            Decoded(
                kind,
                decode(
                    kind,
                    encode_value(value),
                    max_value_bytes=settings.max_value_bytes,
                    max_text_bytes=settings.max_text_bytes,
                ),
            )
            for kind, value in events[start : start + settings.batch_events]
        ]
        out = proc.fold_batch(batch, proc.score(batch), users, now)
        for _, value in out.item_events:
            proc.fold_item(value, items)
        requests = [Request(u, e, ts, out.states.get(u)) for u, (e, ts) in out.triggers.items()]
    lists = [[i["item_id"] for i in r["items"]] for r in proc.recommend_many(requests, users, now)]
    windows: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        began, calls = time.perf_counter(), 0
        while time.perf_counter() - began < 0.5:
            proc.recommend_many(requests, users, now)
            calls += 1
        windows.append((time.perf_counter() - began) / (calls * len(requests)) * 1e6)
    digest = hashlib.sha256(json.dumps(lists).encode()).hexdigest()[:12]
    return {"us_best": min(windows), "us_median": statistics.median(windows), "lists": digest}


def child(root: Path, index_dir: str, seconds: float) -> dict[str, Any]:
    """One round in a fresh process on the code under ``root``."""
    code = (
        "import json, runpy, sys; sys.path.insert(0, '.'); "
        f"measure = runpy.run_path({str(Path(__file__).resolve())!r})['measure']; "
        f"print(json.dumps(measure({index_dir!r}, {seconds!r})))"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        raise SystemExit(f"ranking round failed under {root}:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True).stdout.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per round")
    parser.add_argument("--against", help="a commit to compare with, rounds alternating")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    from benchmarks.common import machine, utc_now
    from benchmarks.pipeline.config import WORK, prepare_index
    from stream.settings import Settings

    index_dir = str(prepare_index(Settings(data_dir=str(WORK / "w-prep"))))
    sides = {"this tree": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        if args.against:
            other = Path(tmp) / "against"
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(other), args.against],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            sides = {args.against: other, "this tree": ROOT}
        try:
            rounds: dict[str, list[dict[str, Any]]] = {k: [] for k in sides}
            for r in range(args.rounds):
                for label, root in sides.items():
                    got = child(root, index_dir, args.seconds)
                    rounds[label].append(got)
                    print(f"round {r + 1} {label}: {got['us_best']:.1f} us ({got['lists']})")
        finally:
            if args.against:
                subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT)
    result: dict[str, Any] = {
        "date": utc_now(),
        "machine": machine(),
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "stream")),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "sides": {
            label: {
                "us_per_recommendation_best": round(min(x["us_best"] for x in got), 1),
                "us_per_recommendation_median_of_bests": round(
                    statistics.median(x["us_best"] for x in got), 1
                ),
                "lists": sorted({x["lists"] for x in got}),
            }
            for label, got in rounds.items()
        },
    }
    if args.against:
        a, b = (
            result["sides"][k]["us_per_recommendation_best"] for k in (args.against, "this tree")
        )
        result["ratio_this_vs_against"] = round(b / a, 3)
        result["same_lists"] = (
            result["sides"][args.against]["lists"] == result["sides"]["this tree"]["lists"]
        )
    lines = [
        "# Ranking benchmark",
        "",
        f"Run {result['date']} at {result['commit']}"
        f"{' (stream/ modified)' if result['dirty'] else ''}; {args.rounds} rounds of "
        f"{args.seconds:g} s, best half-second window per round.",
        "",
        "| code | us per recommendation, best | median of round bests | lists |",
        "|---|---:|---:|---|",
    ]
    for label, side in result["sides"].items():
        lines.append(
            f"| {label} | {side['us_per_recommendation_best']} | "
            f"{side['us_per_recommendation_median_of_bests']} | {', '.join(side['lists'])} |"
        )
    if args.against:
        lines += [
            "",
            f"This tree vs {args.against}: {result['ratio_this_vs_against']}x the time per "
            f"recommendation; same lists: {result['same_lists']}.",
        ]
    print("\n".join(lines))
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "ranking.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "ranking.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
