"""What a backtest run returns, and summaries of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from stream.contract.records import Review
from stream.offline.backtest.metrics import Interval, intervals_json, point_metrics
from stream.offline.backtest.protocol import DAY_MS, month_start
from stream.offline.backtest.simulate import PointResults
from stream.offline.backtest.timeline import Timeline
from stream.offline.backtest.tuning import Tuning
from stream.offline.backtest.variants import BASELINES
from stream.ports import Scores


@dataclass
class VariantResult:
    name: str
    about: str
    params: dict[str, Any]
    points: PointResults
    metrics: dict[str, float] = field(default_factory=dict)  # on the reported points
    ci: dict[str, dict[str, Interval]] = field(default_factory=dict)  # baseline -> metric -> CI
    seconds: float = 0.0


V = TypeVar("V")
T = TypeVar("T")


@dataclass
class RunResult(Generic[V, T]):
    """What any backtest run returns first: the data set, the protocol, each variant's outcome and
    the tuning (None when not tuned); the review and the ReDial backtests add their own."""

    dataset: dict[str, Any]
    protocol: dict[str, Any]
    variants: dict[str, V]
    tuning: T | None


@dataclass
class BacktestResult(RunResult[VariantResult, Tuning]):
    timeline: Timeline
    report_mask: npt.NDArray[np.bool_]  # over test points: those the table is computed on
    timings: dict[str, float]
    cache_hit: bool = False  # the model scores came from the cache
    # tuned vs the core's defaults for sentiment_aware on the reported points: does tuning carry?
    tuning_check: dict[str, Interval] | None = None

    def metrics_json(self) -> dict[str, Any]:
        """``metrics.json``: variants -> ndcg@K, hr@K, mrr, coverage and the two CIs."""
        k = self.protocol["k"]
        out: dict[str, Any] = {}
        for name, v in self.variants.items():
            entry: dict[str, Any] = {
                f"ndcg@{k}": round(v.metrics[f"ndcg@{k}"], 6),
                f"hr@{k}": round(v.metrics[f"hr@{k}"], 6),
                "mrr": round(v.metrics["mrr"], 6),
                "coverage": round(v.metrics["coverage"], 6),
            }
            entry.update(intervals_json(v.ci, BASELINES))
            out[name] = entry
        return {"variants": out, "dataset": self.dataset, "protocol": self.protocol}


def report_head(title: str, command: str) -> list[str]:
    """The opening of a ``report.md``: its title and the command that reproduces the run."""
    return [f"# Backtest: {title}", "", "## What was run", "", "```", command, "```", ""]


def split_time(tl: Timeline, share: float) -> int | None:
    """First time of the report part: the test point at ``share`` of them (by time), so that
    points sharing a timestamp stay on one side. None when either side would be empty."""
    times = tl.ts[tl.test]
    if times.size < 2:
        return None
    split = int(times[min(int(share * times.size), times.size - 1)])
    if split <= int(times[0]):
        return None
    return split


def summarise(points: PointResults, mask: npt.NDArray[np.bool_], k: int) -> dict[str, float]:
    per = point_metrics(points.ranks[mask], k)
    out = {name: float(v.mean()) if v.size else 0.0 for name, v in per.items()}
    shown = {item for top, keep in zip(points.top, mask, strict=True) if keep for item in top}
    catalog = int(points.catalog[mask].max()) if mask.any() else 0
    out["coverage"] = len(shown) / catalog if catalog else 0.0
    out["points"] = float(mask.sum())
    return out


def model_agreement(events: Sequence[Review], scores: Scores) -> dict[str, float] | None:
    """How well the model's valence matches the stars: the error the rating_oracle removes."""
    rows = [i for i, e in enumerate(events) if e.rating is not None]
    if len(rows) < 2:
        return None
    valence = np.asarray(scores.valence, dtype=np.float64)[rows]
    stars = np.array([(events[i].rating or 3) - 3 for i in rows], dtype=np.float64) / 2.0
    pearson = 0.0
    if valence.std() > 0 and stars.std() > 0:
        pearson = float(np.corrcoef(valence, stars)[0, 1])
    polar = stars != 0
    negative = stars < 0
    agree = np.sign(valence[polar]) == np.sign(stars[polar])
    return {
        "pearson": round(pearson, 4),
        "polar": int(polar.sum()),
        "sign_accuracy": round(float(agree.mean()) if agree.size else 0.0, 4),
        "negative_recall": round(
            float((valence[negative] < 0).mean()) if negative.any() else 0.0, 4
        ),
    }


def history_at_points(tl: Timeline) -> npt.NDArray[np.int64]:
    """Per test point: how many reviews its user had written before it (what taste knows)."""
    written: dict[str, int] = {}
    out: list[int] = []
    for start, end in tl.groups:
        out += [written.get(tl.events[i].user_id, 0) for i in range(start, end) if tl.test[i]]
        for i in range(start, end):
            user = tl.events[i].user_id
            written[user] = written.get(user, 0) + 1
    return np.asarray(out, dtype=np.int64)


def reachable_share(tl: Timeline, mask: npt.NDArray[np.bool_]) -> float:
    """Share of reported targets that were in the index at their time (the HR ceiling)."""
    idx = tl.test_index[mask]
    if idx.size == 0:
        return 0.0
    reach = 0
    for i in idx:
        e = tl.events[int(i)]
        cut = max((t for t in tl.rebuilds if t <= e.ts), default=None)
        reach += cut is not None and tl.first_seen[e.item_id] < cut
    return reach / idx.size


def ndcg_by_period(
    result: BacktestResult, days: int | None = None
) -> tuple[list[int], dict[str, list[float]], list[int]]:
    """Mean NDCG@K per calendar quarter (or ``days``-long bins) over every test point, with the
    point counts: (bin start times, variant -> means, counts)."""
    k = result.protocol["k"]
    times = result.timeline.ts[result.timeline.test]
    if times.size == 0:
        return [], {}, []
    if days:
        edges = list(range(int(times[0]), int(times[-1]) + days * DAY_MS, days * DAY_MS))
    else:
        day = dt.datetime.fromtimestamp(int(times[0]) / 1000, dt.UTC)
        edges = [month_start(int(times[0]), -((day.month - 1) % 3))]
        while edges[-1] <= int(times[-1]):
            edges.append(month_start(edges[-1], 3))
    bins = np.searchsorted(np.asarray(edges), times, side="right") - 1
    starts, counts = [], []
    means: dict[str, list[float]] = {n: [] for n in result.variants}
    per = {n: point_metrics(v.points.ranks, k)[f"ndcg@{k}"] for n, v in result.variants.items()}
    for b in range(len(edges)):
        sel = bins == b
        if not sel.any():
            continue
        starts.append(edges[b])
        counts.append(int(sel.sum()))
        for n in means:
            means[n].append(float(per[n][sel].mean()))
    return starts, means, counts
