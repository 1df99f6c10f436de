"""Measurement: rates and CPU shares from scraped samples; cProfile reports."""

from __future__ import annotations

import pstats
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

STREAM = f"{ROOT}/stream/"  # the measured tree's own code (a worktree's, not the editable's)


def steady(samples: list[dict[str, Any]], expected: int) -> tuple[int, int] | None:
    """Indices of the samples at the 10% and 90% marks (the last sample if 90% was not reached);
    None before the 10% mark."""

    def first_at(frac: float) -> int | None:
        for i, s in enumerate(samples):
            if s["total"] >= frac * expected:
                return i
        return None

    i10 = first_at(0.10)
    i90 = first_at(0.90)
    if i10 is None:
        return None
    if i90 is None or i90 <= i10:
        i90 = len(samples) - 1
    return i10, i90


def summarize(samples: list[dict[str, Any]], expected: int) -> dict[str, Any]:
    """Rates between the 10% and 90% marks (the steady part) and over the whole drain."""
    marks = steady(samples, expected)
    complete = samples[-1]["total"] >= expected
    if marks is None:
        return {"complete": False, "folded": samples[-1]["total"], "expected": expected}
    i10, i90 = marks
    a, b = samples[i10], samples[i90]
    dt = b["t"] - a["t"]
    rate = (b["total"] - a["total"]) / dt if dt > 0 else float("nan")
    texts_rate = (b["texts"] - a["texts"]) / dt if dt > 0 else float("nan")
    recs_rate = (b["recs"] - a["recs"]) / dt if dt > 0 else float("nan")
    windows = []  # ~1 s windows inside the steady part
    j = i10
    for k in range(i10 + 1, i90 + 1):
        if samples[k]["t"] - samples[j]["t"] >= 1.0:
            windows.append(
                (samples[k]["total"] - samples[j]["total"]) / (samples[k]["t"] - samples[j]["t"])
            )
            j = k
    first = next(i for i, s in enumerate(samples) if s["total"] > 0)
    f, z = samples[first], samples[-1]
    overall = (z["total"] - f["total"]) / (z["t"] - f["t"]) if z["t"] > f["t"] else float("nan")
    cpu = {f"{k}_cores": round((b["cpu"][k] - a["cpu"][k]) / dt, 2) for k in a["cpu"]}
    busy = (b["machine"] - a["machine"]) / dt
    cpu["machine_busy_cores"] = round(busy, 2)
    cpu["others_cores"] = round(
        max(0.0, busy - sum(v for k, v in cpu.items() if k != "machine_busy_cores")), 2
    )
    batches = b["batches"] - a["batches"]
    return {
        "complete": complete,
        "expected": expected,
        "folded": int(z["total"]),
        "events_per_s": round(rate, 1),
        "events_per_s_window_median": round(statistics.median(windows), 1) if windows else None,
        "events_per_s_overall": round(overall, 1),
        "texts_per_s": round(texts_rate, 1),
        "recommendations_per_s": round(recs_rate, 1),
        "mean_batch_events": round((b["batch_sum"] - a["batch_sum"]) / batches, 1)
        if batches
        else None,
        "steady_window_s": round(dt, 2),
        "drain_s": round(z["t"] - f["t"], 2),
        "worker_rss_mib": round(max(s["rss_mib"] for s in samples), 0),
        "cpu": cpu,
        # Shares of the steady window: the folding task waiting for scores (the model is the
        # bottleneck) or folding; the scoring thread inside predict().
        "time_share": {
            k: round((b[k] - a[k]) / dt, 2) if dt > 0 else None
            for k in ("score_wait_s", "fold_s", "predict_s")
        },
    }


def profile_report(path: Path, top: int = 25) -> dict[str, Any]:
    """Hot spots by own time, the project's functions by inclusive time, time per package."""
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    raw = stats.stats  # type: ignore[attr-defined]

    def where(key: tuple[str, int, str]) -> str:
        filename, line, func = key
        short = filename
        for marker in ("site-packages/", f"{ROOT}/", "lib/python3.11/"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                break
        return f"{short}:{line}:{func}" if filename != "~" else func

    def package(filename: str) -> str:
        if filename == "~":
            return "builtins/C"
        if STREAM in filename:
            return "stream." + filename.split(STREAM, 1)[1].removesuffix(".py")
        if "site-packages/" in filename:
            return filename.split("site-packages/", 1)[1].split("/", 1)[0]
        if "lib/python3.11/" in filename:
            return "stdlib." + filename.split("lib/python3.11/", 1)[1].split("/", 1)[0]
        return filename

    by_own = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    own = [
        {
            "function": where(k),
            "own_share": round(v[2] / total, 4),
            "calls": v[1],
            "inclusive_share": round(v[3] / total, 4),
        }
        for k, v in by_own
    ]
    ours = sorted(((k, v) for k, v in raw.items() if STREAM in k[0]), key=lambda kv: -kv[1][3])[
        :top
    ]
    inclusive = [
        {
            "function": where(k),
            "inclusive_share": round(v[3] / total, 4),
            "own_share": round(v[2] / total, 4),
            "calls": v[1],
        }
        for k, v in ours
    ]
    packages: Counter[str] = Counter()
    for k, v in raw.items():
        packages[package(k[0])] += v[2]
    per_package = [
        {"package": p, "own_share": round(t / total, 4)} for p, t in packages.most_common(15)
    ]
    return {
        "profiled_s": round(total, 2),
        "top_own": own,
        "stream_inclusive": inclusive,
        "packages": per_package,
    }
