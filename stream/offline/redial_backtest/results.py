"""ReDial backtest: the result of a run, its metrics.json and report.md."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.offline.backtest import (
    Interval,
)
from stream.offline.backtest.metrics import format_interval as _ci
from stream.offline.backtest.metrics import intervals_json, verdict
from stream.offline.backtest.results import RunResult, report_head
from stream.offline.redial_backtest.tuning import Tuning
from stream.offline.redial_backtest.variants import BASELINES, TUNE_KEY, TUNED_ON


@dataclass
class VariantOutcome:
    name: str
    about: str
    ranks: npt.NDArray[np.int64]
    tops: list[tuple[str, ...]]
    metrics: dict[str, float]
    params: dict[str, Any]
    seconds: float
    ci: dict[str, dict[str, Interval]] = field(default_factory=dict)


@dataclass
class RedialResult(RunResult[VariantOutcome, Tuning]):
    timings: dict[str, float]

    def metrics_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, v in self.variants.items():
            entry: dict[str, Any] = {k: round(x, 6) for k, x in v.metrics.items()}
            entry.update(intervals_json(v.ci, BASELINES))
            out[name] = entry
        tuning = None
        if self.tuning is not None:
            t = self.tuning
            tuning = {
                "selected": {"engagement": t.engagement, "rank": t.rank},
                "points": t.points,
                TUNE_KEY: round(t.score, 6),
                f"{TUNE_KEY}_at_defaults": round(t.default_score, 6),
                "trials": [{"setting": s, TUNE_KEY: round(m, 6)} for s, m in t.trials],
            }
        return {
            "variants": out,
            "dataset": self.dataset,
            "protocol": self.protocol,
            "tuning": tuning,
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
        }


def _verdict(ci: Interval | None) -> str:
    """``verdict`` with its reason spelled out, for readers new to intervals."""
    if ci is None:
        return "not compared"
    said = verdict(ci)
    why = "includes" if said == "not distinguishable" else "excludes"
    return f"{said} (the interval {why} zero)"


def markdown(result: RedialResult, command: str) -> str:
    d, p = result.dataset, result.protocol
    lines = [
        *report_head("ReDial (seeker chats, recommender mentions as targets)", command),
        f"- Data: {d.get('name', 'ReDial')}: {d['train_dialogues']} train dialogues replayed "
        f"first (never reported), {d['dev_dialogues']} dev dialogues scored; {d['events']} chat "
        f"events ({d['texts']} distinct seeker texts scored by the model `{p['model_version']}`"
        f"{', read from the score cache' if d.get('scores_cached') else ''}).",
        f"- Catalog: {d['documents']} movies; each the model's embedding of its name plus the "
        "turns around its mentions in the train dialogues only.",
        f"- Test points: {d['dev_points']} recommender mentions in dev dialogues (left out: "
        f"{d.get('dev_repeat', 0)} repeats of a movie already mentioned in the dialogue, "
        f"{d.get('dev_no_context', 0)} before the seeker's first turn). Each is ranked from the "
        "state left by strictly earlier messages; the dialogue's earlier mentions are excluded "
        "from the list. No later message and no questionnaire answer is folded (the "
        "`rating_oracle` variant alone reads the seeker's `liked` answers).",
        "- Events: every seeker turn is a chat event per movie it mentions; a seeker reply that "
        "mentions none is about the movies of the recommender turn it answers (item context). "
        "They run through `fold_user` / `fold_item` / `fold_item_pairs` and `recommend` on an "
        "`ItemBoard`, as the worker's `Processor` does (a unit test checks both give the same "
        "list). Popularity and neighbours do not decay (dialogues have no dates) and "
        "co-mentions count both ways (`reverse_gain` 1).",
        f"- Metrics: Recall@1/10/50, NDCG@10, MRR over the ranked list (depth {p['depth']}), "
        "coverage = distinct movies in the top-10 lists / catalog. Intervals: paired bootstrap "
        f"over dev points, {p['resamples']} resamples, seed {p['seed']}.",
    ]
    if result.tuning is not None:
        t = result.tuning
        lines.append(
            f"- Tuning: on the {t.points} test points of the last {p['tune_share']:.0%} of the "
            "train dialogues (before every dev dialogue), by Recall@10 of sentiment_aware: "
            f"selected {_kv({**t.engagement, **t.rank})} ({t.score:.4f} vs {t.default_score:.4f}"
            " at the starting values); all trials in `metrics.json`."
        )
    lines += [
        "",
        "## Results",
        "",
        "| variant | R@1 | R@10 | R@50 | NDCG@10 | MRR | coverage | ΔR@10 vs popularity "
        "[95% CI] | ΔR@10 vs no_sentiment [95% CI] |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, v in result.variants.items():
        m = v.metrics
        lines.append(
            f"| {name} | {m['recall@1']:.4f} | {m['recall@10']:.4f} | {m['recall@50']:.4f} | "
            f"{m['ndcg@10']:.4f} | {m['mrr']:.4f} | {m['coverage']:.3f} | "
            f"{_ci(v.ci.get('popularity', {}).get('recall@10'))} | "
            f"{_ci(v.ci.get('sentiment_aware_no_sentiment', {}).get('recall@10'))} |"
        )
    lines += ["", "Variants:", ""]
    lines += [f"- `{n}`: {v.about}" for n, v in result.variants.items()]
    lines += ["", "## What it means", ""]
    sa = result.variants.get(TUNED_ON)
    if sa is not None:
        for base in BASELINES:
            for metric in ("recall@10", "ndcg@10"):
                ci = sa.ci.get(base, {}).get(metric)
                lines.append(f"- sentiment_aware vs {base}, {metric}: {_ci(ci)}: {_verdict(ci)}.")
    oracle = result.variants.get("rating_oracle")
    if oracle is not None:
        ci = oracle.ci.get("sentiment_aware_no_sentiment", {}).get("recall@10")
        lines.append(f"- rating_oracle vs no sentiment, recall@10: {_ci(ci)}: {_verdict(ci)}.")
    lines += ["", "## Timings", ""]
    for key, seconds in result.timings.items():
        lines.append(f"- {key.removesuffix('_s').replace('_', ' ')}: {seconds:.1f} s")
    return "\n".join(lines) + "\n"


def _kv(values: Mapping[str, float]) -> str:
    return ", ".join(f"`{k}={v:g}`" for k, v in values.items())


def write_report(result: RedialResult, out_dir: Path, command: str) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = out_dir / "metrics.json"
    report = out_dir / "report.md"
    metrics.write_text(json.dumps(result.metrics_json(), indent=2) + "\n", encoding="utf-8")
    report.write_text(markdown(result, command), encoding="utf-8")
    return [metrics, report]
