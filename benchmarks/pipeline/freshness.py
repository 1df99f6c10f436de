"""Item-state freshness: quantiles of a worker's ``moodstream_board_freshness_seconds``.

The histogram (``stream/worker/metrics.py``) times each item record from the fold of its oldest
delta to its arrival on this worker's board (``stream/worker/board_feed.py``). Read after a drain,
once the board has read the changelog to its end, it holds the freshness at the rate the drain
ran at: the worker's sustained click rate.
"""

from __future__ import annotations

import math
import time
from typing import Any

from benchmarks.common import scrape

FRESHNESS = "moodstream_board_freshness_seconds"
BOARD_LAG = "moodstream_board_lag_records"


def buckets_of(metrics: dict[str, float], name: str) -> list[tuple[float, float]]:
    """The cumulative buckets of histogram ``name`` as sorted (upper bound, count) pairs."""
    prefix = f"{name}_bucket{{"
    out = []
    for key, count in metrics.items():
        if key.startswith(prefix) and 'le="' in key:
            le = key.split('le="', 1)[1].split('"', 1)[0]
            out.append((float(le), count))  # "+Inf" parses as inf
    return sorted(out)


def quantile(buckets: list[tuple[float, float]], q: float) -> dict[str, float] | None:
    """Quantile ``q`` as Prometheus' ``histogram_quantile`` estimates it (linear inside the
    bucket), with the bucket's upper bound (the quantile is at most that); None when empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    count = buckets[-1][1]
    rank = q * count
    prev_le, prev_count = 0.0, 0.0
    for le, cum in buckets:
        if cum >= rank:
            if math.isinf(le):  # beyond the last finite bucket: its bound is all we know
                return {"estimate": prev_le, "at_most": le}
            inside = (rank - prev_count) / (cum - prev_count) if cum > prev_count else 1.0
            return {"estimate": round(prev_le + (le - prev_le) * inside, 3), "at_most": le}
        prev_le, prev_count = le, cum
    return None  # not reached: the buckets were not cumulative


def summary(metrics: dict[str, float], bound_s: float = 2.0) -> dict[str, Any]:
    """Count, mean, p50/p99 and the share within ``bound_s`` of the freshness histogram."""
    buckets = buckets_of(metrics, FRESHNESS)
    count = buckets[-1][1] if buckets else 0.0
    within = next((cum for le, cum in buckets if le == bound_s), None)
    total_s = metrics.get(f"{FRESHNESS}_sum", 0.0)
    return {
        "count": int(count),
        "mean_s": round(total_s / count, 3) if count else None,
        "p50": quantile(buckets, 0.50),
        "p99": quantile(buckets, 0.99),
        f"share_within_{bound_s:g}_s": round(within / count, 4)
        if count and within is not None
        else None,
    }


def board_freshness(port: int, settle_s: float = 5.0) -> dict[str, Any]:
    """The freshness summary once the board has no changelog lag and the histogram stopped
    growing for 1 s (at most ``settle_s``): the last item records of the drain are counted."""
    began = time.perf_counter()
    last_count, still_since = -1.0, began
    metrics: dict[str, float] = {}
    while time.perf_counter() - began < settle_s:
        try:
            metrics = scrape(port)
        except OSError:
            break
        count = metrics.get(f"{FRESHNESS}_count", 0.0)
        now = time.perf_counter()
        if count != last_count:
            last_count, still_since = count, now
        elif metrics.get(BOARD_LAG, 1.0) == 0 and now - still_since >= 1.0:
            break
        time.sleep(0.2)
    return summary(metrics) | {"settled_after_s": round(time.perf_counter() - began, 1)}
