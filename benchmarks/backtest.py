"""Where a backtest's time goes: loading, model scoring (uncached), tuning, each variant.

    .venv/bin/python benchmarks/backtest.py                 # 3,000 reviews, ~3 min on 2 vCPU
    .venv/bin/python benchmarks/backtest.py --limit 10261   # the whole Musical Instruments set

Runs ``run_backtest`` on the earliest ``--limit`` reviews of the Musical Instruments file with an
empty scores cache, so scoring is measured too, and reports wall and CPU seconds per stage, the
model's texts/s and the ranker's cost per test point. It also times the ranker's small matmul
(MMR similarities, 200 x 384) with OpenBLAS's default threads and with one, the reason the
backtest pins BLAS to one thread. Results go to benchmarks/results/backtest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, utc_now  # noqa: E402
from stream.adapters.sentiment import OnnxSentimentModel  # noqa: E402
from stream.offline.backtest import Protocol, run_backtest, single_threaded_blas  # noqa: E402
from stream.offline.datasets import load_reviews  # noqa: E402
from stream.settings import Settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "reviews" / "amazon_musical_instruments_5core"
DATASET = DATA / "Musical_instruments_reviews.csv.zip"
RESULTS = ROOT / "benchmarks" / "results" / "backtest.json"


def matmul_ms(threads_one: bool, repeats: int = 200) -> float:
    v = np.random.default_rng(0).random((200, 384), dtype=np.float32)
    start = time.perf_counter()
    if threads_one:
        with single_threaded_blas():
            for _ in range(repeats):
                v @ v.T
    else:
        for _ in range(repeats):
            v @ v.T
    return 1e3 * (time.perf_counter() - start) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not DATASET.is_file():
        print(f"skipped: {DATASET} not present (../shared/data)")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()
    t0, c0 = time.perf_counter(), time.process_time()
    data = load_reviews(DATASET, limit=args.limit)
    load_s = time.perf_counter() - t0
    model = OnnxSentimentModel.from_settings(settings)
    with tempfile.TemporaryDirectory() as cache:
        result = run_backtest(data.events, model, settings, Protocol(), cache_dir=Path(cache))
    cpu_s = time.process_time() - c0
    points = int(result.protocol["test_points"])
    timings = {k: round(v, 2) for k, v in result.timings.items()}
    variants = {
        k.removeprefix("variant_").removesuffix("_s"): v
        for k, v in timings.items()
        if k.startswith("variant_")
    }
    figures: dict[str, Any] = {
        "measured_at": utc_now(),
        "machine": machine(),
        "model": f"{model.version} ({model.variant}, {model.provider})",
        "reviews": len(data.events),
        "test_points": points,
        "tuning_points": result.protocol["tuning_points"],
        "load_s": round(load_s, 2),
        "stage_s": timings,
        "process_cpu_s": round(cpu_s, 1),
        "scoring_texts_per_s": round(len(data.events) / max(timings["scoring_s"], 1e-9), 1),
        "variant_ms_per_test_point": {
            k: round(1e3 * v / max(points, 1), 2) for k, v in variants.items()
        },
        "mmr_matmul_ms": {
            "blas_default_threads": round(matmul_ms(False), 3),
            "blas_one_thread": round(matmul_ms(True), 3),
        },
        "note": "2 vCPU shared with other jobs: wall times are upper bounds; see process_cpu_s",
    }
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
