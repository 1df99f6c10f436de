"""Per-point ranking metrics and the paired bootstrap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


def point_metrics(ranks: npt.ArrayLike, k: int) -> dict[str, npt.NDArray[np.float64]]:
    """Per test point: hr@k, ndcg@k, rr. ``ranks`` are 1-based positions, 0 = not in the list."""
    r = np.asarray(ranks, dtype=np.float64)
    hit = (r >= 1) & (r <= k)
    ndcg = np.zeros_like(r)
    np.divide(1.0, np.log2(r + 1.0), out=ndcg, where=hit)
    rr = np.zeros_like(r)
    np.divide(1.0, r, out=rr, where=r >= 1)
    return {f"hr@{k}": hit.astype(np.float64), f"ndcg@{k}": ndcg, "mrr": rr}


@dataclass(frozen=True)
class Interval:
    diff: float  # mean paired difference on the real sample
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"diff": round(self.diff, 6), "low": round(self.low, 6), "high": round(self.high, 6)}


def bootstrap_indices(n: int, resamples: int, seed: int) -> npt.NDArray[np.int64]:
    """(resamples, n) indices drawn with replacement; one draw shared by every comparison."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, max(n, 1), size=(resamples, n), dtype=np.int64)


def paired_bootstrap(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    indices: npt.NDArray[np.int64] | None = None,
) -> Interval:
    """Percentile interval of mean(a - b) over test points resampled with replacement."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return Interval(0.0, 0.0, 0.0)
    idx = bootstrap_indices(d.size, resamples, seed) if indices is None else indices
    means = d[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return Interval(float(d.mean()), float(low), float(high))


def format_interval(ci: Interval | None) -> str:
    """``+0.0023 [-0.0040, +0.0081]`` as the reports print a difference and its interval."""
    if ci is None:
        return "—"
    return f"{ci.diff:+.4f} [{ci.low:+.4f}, {ci.high:+.4f}]"


def verdict(ci: Interval) -> str:
    """``better``, ``worse`` or ``not distinguishable``: whether the 95% interval excludes 0, and
    on which side (both reports word a comparison so)."""
    if ci.low > 0:
        return "better"
    if ci.high < 0:
        return "worse"
    return "not distinguishable"


def intervals_json(
    ci: Mapping[str, Mapping[str, Interval]], baselines: Sequence[str]
) -> dict[str, dict[str, dict[str, float]] | None]:
    """``ci95_vs_<baseline>``: metric -> interval, None where that pair was not compared, as both
    backtests' ``metrics.json`` write them."""
    out: dict[str, dict[str, dict[str, float]] | None] = {}
    for base in baselines:
        cis = ci.get(base)
        out[f"ci95_vs_{base}"] = None if cis is None else {m: c.to_dict() for m, c in cis.items()}
    return out
