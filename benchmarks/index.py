"""Flat vs HNSW item search at catalog scale: single-query latency and recall@50.

    .venv/bin/python benchmarks/index.py                # 100k synthetic items, ~3 min on 2 vCPU
    .venv/bin/python benchmarks/index.py --n 20000      # quicker

The items are synthetic but shaped like sentence embeddings: unit vectors in 384-d drawn around
topic and sub-topic centres that share a common direction (MiniLM embeddings are anisotropic:
unrelated sentences still have cosine ~0.1-0.2). Queries are taste-like: normalised blends of a
few items, as ``TasteState`` builds them. Recall@50 is measured against exact search. Results go
to benchmarks/results/index.json (medians; the machine is shared, so expect ~20% noise).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, utc_now  # noqa: E402
from stream.adapters.index import BLAS_MIN_QUERIES, FaissItemIndex, build_index, recall_at_k  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "index.json"
K = 50
Vectors = npt.NDArray[np.float32]


def unit(x: npt.NDArray[Any]) -> Vectors:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_items(n: int, dim: int, seed: int) -> Vectors:
    """Topics (400) x sub-topics (8) around a shared direction; items vary around their
    sub-topic in a 32-d subspace (sentence embeddings have a low intrinsic dimension) plus a
    little isotropic noise. Random pairs have cosine ~0.1, nearest neighbours ~0.75."""
    rng = np.random.default_rng(seed)
    common = unit(rng.normal(size=dim))
    topics = unit(rng.normal(size=(400, dim)) + 1.2 * common)
    subs = unit(topics[:, None, :] + 0.6 * unit(rng.normal(size=(400, 8, dim)))).reshape(-1, dim)
    sizes = rng.zipf(1.6, size=len(subs)).astype(np.float64)  # long-tailed topic sizes
    pick = rng.choice(len(subs), size=n, p=sizes / sizes.sum())
    basis = np.linalg.qr(rng.normal(size=(dim, 32)))[0]
    local = unit(rng.normal(size=(n, 32))) @ basis.T
    return unit(subs[pick] + 0.8 * local + 0.3 * unit(rng.normal(size=(n, dim))))


def taste_queries(items: Vectors, n: int, seed: int) -> Vectors:
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(items), size=(n, 4))
    weights = rng.uniform(0.3, 1.0, size=(n, 4, 1))
    return unit((items[picks] * weights).sum(axis=1))


def time_single(search: Any, queries: Vectors, repeat: int = 1) -> dict[str, float]:
    """Median and p95 latency in ms of one-query calls."""
    search(queries[:1])  # warm up
    times = []
    for _ in range(repeat):
        for q in queries:
            t0 = time.perf_counter()
            search(q[None, :])
            times.append(1e3 * (time.perf_counter() - t0))
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="items")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=300, help="queries for recall and latency")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t0 = time.perf_counter()
    items = synthetic_items(args.n, args.dim, args.seed)
    queries = taste_queries(items, args.queries, args.seed + 1)
    ids = [f"item{i}" for i in range(args.n)]
    print(f"generated {args.n} x {args.dim} items in {time.perf_counter() - t0:.1f} s")

    flat = faiss.IndexFlatIP(args.dim)
    flat.add(items)
    faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES * args.dim
    faiss.omp_set_num_threads(1)
    _, exact = flat.search(queries, K)
    report: dict[str, Any] = {
        "items": args.n,
        "dim": args.dim,
        "k": K,
        "queries": args.queries,
        "data": "synthetic clustered unit vectors (see benchmarks/index.py)",
        "note": "2 shared vCPUs under load from other jobs: latencies are noisy; compare "
        "flat and HNSW within one run, not across runs",
        "machine": {**machine(), "faiss": faiss.__version__},
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }

    flat_times = {}
    for threads in (1, 2):
        faiss.omp_set_num_threads(threads)
        flat_times[f"{threads}_thread"] = time_single(lambda q: flat.search(q, K), queries[:100])
    report["flat_single_query"] = flat_times
    print(f"flat single query: {flat_times}")

    batch = queries[:256]
    batched: dict[str, Any] = {}
    faiss.omp_set_num_threads(1)
    for label, threshold in (("default_threshold", 128_000), ("adapter_threshold", None)):
        faiss.cvar.distance_compute_blas_threshold = threshold or BLAS_MIN_QUERIES * args.dim
        t = time.perf_counter()
        flat.search(batch, K)
        batched[label] = round(1e3 * (time.perf_counter() - t), 1)
    faiss.cvar.distance_compute_blas_threshold = BLAS_MIN_QUERIES * args.dim
    report["flat_batch_256_ms_1_thread"] = batched
    print(f"flat batch of 256 (ms, 1 thread): {batched}")

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "hnsw"
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        t = time.perf_counter()
        # recall_target 0 keeps HNSW whatever its recall: the sweep below measures it
        manifest = build_index(ids, items, folder, "benchmark", exact_max=0, seed=args.seed,
                               recall_target=0.0)  # fmt: skip
        build_s = time.perf_counter() - t
        print(f"HNSW build {build_s:.1f} s: {manifest.to_dict()}")
        hnsw: Any = faiss.read_index(str(folder / "index.faiss"))
        sweep = []
        for ef in (32, 64, 128, 256, 512):
            hnsw.hnsw.efSearch = ef
            faiss.omp_set_num_threads(1)
            _, approx = hnsw.search(queries, K)
            latency = time_single(lambda q: hnsw.search(q, K), queries[:200])
            row: dict[str, Any] = {
                "ef_search": ef,
                "recall_at_50": round(recall_at_k(approx, exact), 4),
            }
            row.update(latency)
            sweep.append(row)
            print(f"  efSearch {ef}: {row}")
        # what build_index picks by default: efSearch doubled from 64 until recall >= 0.95
        chosen = next((r["ef_search"] for r in sweep if r["ef_search"] >= 64
                       and r["recall_at_50"] >= 0.95), None)  # fmt: skip
        adapter = None
        if chosen is not None:
            index = FaissItemIndex.load(folder, ef_search=chosen)
            adapter = time_single(lambda q: index.search(q, K), queries[:200])
        report["hnsw"] = {
            "m": manifest.hnsw_m,
            "ef_construction": manifest.ef_construction,
            "build_s": round(build_s, 1),
            "build_sample_recall_at_50_ef64": manifest.recall_at_50,
            "sweep": sweep,
            "ef_search_for_recall_095": chosen,
            "adapter_single_query_at_that_ef": adapter,
        }
        print(f"efSearch for recall@50 >= 0.95: {chosen}; adapter single query: {adapter}")

    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    report["measured_at"] = utc_now()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
