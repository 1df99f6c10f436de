"""5. Memory (child process): state bytes per user and the RSS of large tables."""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, percentile, proc_rss_mib
from benchmarks.pipeline.config import Plan
from benchmarks.pipeline.core import StubModel
from stream.settings import Settings


def _fold_history(proc: Any, sample: int, per_user: int) -> tuple[dict[str, Any], int, float]:
    """A simulated month of ``sample`` users' history folded into a dict table, 32 at a time."""
    from stream.contract.decoding import decode
    from stream.sim.simulate import SimConfig, Simulation, encode_value
    from stream.worker.processor import Decoded

    month_s = 30 * 86400
    cfg = SimConfig(
        seed=0,
        n_users=sample,
        n_items=500,
        n_events=sample * per_user,
        rate=sample * per_user / month_s,
        id_prefix="mem-",
    )
    users_t: dict[str, Any] = {}
    batch: list[Decoded] = []
    began = time.perf_counter()
    n_events = 0

    def flush() -> None:
        scores = proc.score(batch)
        proc.fold_batch(batch, scores, users_t, 0)
        batch.clear()

    for kind, value in Simulation(cfg).events():
        record = decode(kind, encode_value(value), max_value_bytes=65536, max_text_bytes=8192)
        batch.append(Decoded(kind, record))
        n_events += 1
        if len(batch) == 32:
            flush()
    if batch:
        flush()
    return users_t, n_events, time.perf_counter() - began


def _fold_heavy(proc: Any, users_t: dict[str, Any]) -> None:
    """A saturated user: 200 purchases of distinct items within an hour fill both windows."""
    from stream.contract.decoding import decode
    from stream.sim.simulate import encode_value, make_catalog
    from stream.worker.processor import Decoded

    items = [it.item_id for it in make_catalog(0, 500)]
    now = int(time.time() * 1000)
    heavy: list[Decoded] = []
    for k in range(200):
        value = {
            "event_id": f"heavy-{k}",
            "user_id": "heavy",
            "item_id": items[k],
            "action": "purchase",
            "ts": now + k * 1000,
        }
        heavy.append(
            Decoded(
                "clicks",
                decode("clicks", encode_value(value), max_value_bytes=65536, max_text_bytes=8192),
            )
        )
    proc.fold_batch(heavy, None, users_t, 0)


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def _sizes(users_t: dict[str, Any], user: str) -> dict[str, int]:
    """Compact-JSON bytes of one user's table entries, split by what they hold."""
    size = _size
    u = users_t[user]
    vec = size(u["taste"]["vec"]) + len('"vec":')
    parts = {
        "taste_vector": vec,
        "taste_scalars": size(u["taste"]) - vec,
        "emotion": size(u["emotion"]),
        "seen_items": size(u["seen"]),
        "dedup_window": size(u["ids"]),
        "users_other": size(u)
        - size(u["taste"])
        - size(u["emotion"])
        - size(u["seen"])
        - size(u["ids"]),
        "keys": size(user),
    }
    parts["beyond_taste"] = sum(parts.values()) - vec
    return parts


def _tables_rss(users_t: dict[str, Any], users: int) -> tuple[int, float]:
    """RSS of tables holding ``users`` users, values deserialized like a changelog recovery;
    returns (serialized bytes, RSS delta MiB)."""
    compact = (",", ":")
    dumped = [json.dumps(users_t[u], separators=compact) for u in users_t if u != "heavy"]
    gc.collect()
    rss0 = proc_rss_mib(os.getpid())
    big_users: dict[str, Any] = {}
    serialized = 0
    for i in range(users):
        uv = dumped[i % len(dumped)]
        key = f"user-{i:07d}"
        big_users[key] = json.loads(uv)
        serialized += len(uv) + len(key) + 2
    gc.collect()
    rss1 = proc_rss_mib(os.getpid())
    return serialized, rss1 - rss0


def memory_child(index_dir: str, users: int, sample: int, per_user: int) -> dict[str, Any]:
    from stream.adapters.index import FaissItemIndex
    from stream.worker.processor import Processor

    proc = Processor(Settings(), StubModel(), FaissItemIndex.load(index_dir))
    users_t, n_events, fold_s = _fold_history(proc, sample, per_user)
    _fold_heavy(proc, users_t)
    sampled = [_sizes(users_t, u) for u in users_t if u != "heavy"]
    rest = sorted(p["beyond_taste"] for p in sampled)
    vecs = sorted(p["taste_vector"] for p in sampled)
    median_parts = {k: percentile([p[k] for p in sampled], 50) for k in sampled[0]}
    heavy_sizes = _sizes(users_t, "heavy")
    serialized, rss_delta = _tables_rss(users_t, users)
    return {
        "sample_users": len(sampled),
        "history": f"{n_events} simulated events over 30 days ({per_user}/user on average, "
        "Zipf-skewed activity)",
        "history_events_per_s": round(n_events / fold_s, 0),  # simulate+decode+fold
        "taste_vector_bytes": int(statistics.median(vecs)) if vecs else 0,
        "beyond_taste_bytes": {
            "median": percentile(rest, 50),
            "p90": percentile(rest, 90),
            "max": max(rest) if rest else 0,
            "mean": round(statistics.fmean(rest), 1) if rest else 0,
        },
        "median_parts_bytes": median_parts,
        "saturated_user": {
            "taste_vector_bytes": heavy_sizes["taste_vector"],
            "beyond_taste_bytes": heavy_sizes["beyond_taste"],
            "parts_bytes": heavy_sizes,
            "how": "200 purchases of distinct items within 200 s: dedup window "
            "(64 ids) and seen list (100 items) full",
        },
        "table_users": users,
        "serialized_mib": round(serialized / 2**20, 1),
        "serialized_bytes_per_user": round(serialized / users, 0),
        "rss_delta_mib": round(rss_delta, 1),
        "rss_bytes_per_user": round(rss_delta * 2**20 / users, 0),
        "note": "users records as compact JSON; RSS = Python dicts as in Faust's memory:// store",
    }


def measure_memory(index_dir: Path, plan: Plan) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.pipeline",
        "--memory-child",
        str(index_dir),
        str(plan.mem_users),
        str(plan.mem_sample_users),
        str(plan.mem_events_per_user),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=590)
    if out.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
