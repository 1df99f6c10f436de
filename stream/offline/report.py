"""Backtest outputs: ``metrics.json``, ``tuning.json``, ``report.md`` and two PNG plots.

The markdown says what was run (data, model, protocol, the exact command), gives the table, and
reads it: each claim in "What it means" is derived from the paired bootstrap intervals, so the
text cannot say a variant wins when its interval straddles zero.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np

from stream.offline.backtest import (
    BASELINES,
    EVIDENCE_AXES,
    MIN_GAIN,
    RANK_AXES,
    BacktestResult,
    Interval,
    ndcg_by_period,
)
from stream.offline.backtest.metrics import format_interval as _ci
from stream.offline.backtest.metrics import verdict
from stream.offline.backtest.results import report_head

METRICS_FILE = "metrics.json"
TUNING_FILE = "tuning.json"
REPORT_FILE = "report.md"
METRICS_PLOT = "metrics.png"
TIME_PLOT = "ndcg_over_time.png"
_PNG_META = {"Software": None}  # no version string: the same run writes the same bytes


def write_report(result: BacktestResult, out_dir: Path, command: str) -> list[Path]:
    """Write every output file into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [
        out_dir / METRICS_FILE,
        out_dir / REPORT_FILE,
        out_dir / METRICS_PLOT,
        out_dir / TIME_PLOT,
    ]
    paths[0].write_text(json.dumps(result.metrics_json(), indent=2) + "\n", encoding="utf-8")
    if result.tuning is not None:
        paths.append(out_dir / TUNING_FILE)
        paths[-1].write_text(json.dumps(tuning_json(result), indent=2) + "\n", encoding="utf-8")
    plot_metrics(result, paths[2])
    plot_over_time(result, paths[3])
    paths[1].write_text(markdown(result, command), encoding="utf-8")
    return paths


def tuning_json(result: BacktestResult) -> dict[str, Any]:
    t = result.tuning
    if t is None:
        return {}
    k = result.protocol["k"]
    return {
        "metric": f"ndcg@{k}",
        "variant": "sentiment_aware",
        "points": t.points,
        "until": _day(t.until_ms),
        "selected": {"evidence": t.evidence, "rank": t.rank},
        "score": round(t.score, 6),
        "default_score": round(t.default_score, 6),
        "rounds": t.rounds,
        "reported_points_tuned_minus_defaults": None
        if result.tuning_check is None
        else {m: ci.to_dict() for m, ci in result.tuning_check.items()},
        "trials": [{"params": p, "score": round(s, 6)} for p, s in t.trials],
    }


# ----------------------------------------------------------------------------- plots


def plot_metrics(result: BacktestResult, path: Path) -> None:
    """Left: NDCG@K, HR@K, MRR per variant. Right: NDCG@K difference to each baseline, 95% CI."""
    k = result.protocol["k"]
    names = list(result.variants)
    keys = [f"ndcg@{k}", f"hr@{k}", "mrr"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), constrained_layout=True)
    width = 0.8 / len(keys)
    x = np.arange(len(names))
    for j, key in enumerate(keys):
        values = [result.variants[n].metrics[key] for n in names]
        left.bar(x + (j - (len(keys) - 1) / 2) * width, values, width, label=_label(key, result))
    left.set_xticks(x, names, rotation=25, ha="right")
    left.set_ylabel("mean over reported test points")
    left.set_title("Ranking quality by variant")
    left.legend()
    left.grid(axis="y", alpha=0.3)

    y = np.arange(len(names))
    offsets = {base: (i - (len(BASELINES) - 1) / 2) * 0.3 for i, base in enumerate(BASELINES)}
    for base in BASELINES:
        cis = [result.variants[n].ci.get(base, {}).get(f"ndcg@{k}") for n in names]
        diffs = [c.diff if c else np.nan for c in cis]
        lows = [c.diff - c.low if c else 0.0 for c in cis]
        highs = [c.high - c.diff if c else 0.0 for c in cis]
        right.errorbar(
            diffs, y + offsets[base], xerr=[lows, highs], fmt="o", capsize=4, label=f"vs {base}"
        )
    right.axvline(0.0, color="grey", lw=1)
    right.set_yticks(y, names)
    right.invert_yaxis()
    right.set_xlabel(f"difference in NDCG@{k} (paired bootstrap 95% CI)")
    right.set_title("Difference to the baselines")
    right.legend()
    right.grid(axis="x", alpha=0.3)
    fig.savefig(path, dpi=110, metadata=_PNG_META)
    plt.close(fig)


def plot_over_time(result: BacktestResult, path: Path) -> None:
    """NDCG@K per calendar quarter over every test point; the tuning split as a dashed line."""
    k = result.protocol["k"]
    starts, means, counts = ndcg_by_period(result)
    fig, ax = plt.subplots(figsize=(11, 4.8), constrained_layout=True)
    when = [_date_num(s) for s in starts]
    for name, values in means.items():
        ax.plot(when, values, marker="o", ms=3, label=name)
    if result.tuning is not None:
        split = _date_num(result.tuning.until_ms)
        ax.axvline(split, color="black", ls="--", lw=1)
        ax.annotate(
            " tuning | reported ",
            (split, 1.0),
            xycoords=("data", "axes fraction"),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    ax.xaxis_date()
    ax.set_ylabel(f"NDCG@{k} per quarter")
    ax.grid(alpha=0.3)
    twin = ax.twinx()
    twin.bar(when, counts, width=60, alpha=0.12, color="grey")
    twin.set_ylabel("test points per quarter")
    ax.set_zorder(twin.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"NDCG@{k} over time")
    fig.savefig(path, dpi=110, metadata=_PNG_META)
    plt.close(fig)


def _date_num(ms: int) -> float:
    return float(mdates.date2num(dt.datetime.fromtimestamp(ms / 1000, dt.UTC)))


# ----------------------------------------------------------------------------- markdown


def _label(key: str, result: BacktestResult) -> str:
    return f"MRR@{result.protocol['depth']}" if key == "mrr" else key.upper().replace("@", "@")


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")


def _verdict(ci: Interval | None) -> str:
    """``verdict``; no interval is no evidence either way."""
    return "not distinguishable" if ci is None else verdict(ci)


def table(result: BacktestResult) -> list[str]:
    k = result.protocol["k"]
    depth = result.protocol["depth"]
    rows = [
        f"| variant | NDCG@{k} | HR@{k} | MRR@{depth} | coverage | ΔNDCG@{k} vs popularity "
        f"[95% CI] | ΔNDCG@{k} vs taste_only [95% CI] |",
        "|---|---:|---:|---:|---:|---|---|",
    ]

    def _vs(name: str, base: str) -> str:
        if name == base:
            return "—"
        return _ci(result.variants[name].ci.get(base, {}).get(f"ndcg@{k}"))

    for name, v in result.variants.items():
        m = v.metrics
        rows.append(
            f"| {name} | {m[f'ndcg@{k}']:.4f} | {m[f'hr@{k}']:.4f} | {m['mrr']:.4f} | "
            f"{m['coverage']:.3f} | {_vs(name, 'popularity')} | {_vs(name, 'taste_only')} |"
        )
    return rows


def reading(result: BacktestResult) -> list[str]:
    """Sentences that follow from the table's intervals (no claim beyond them)."""
    k = result.protocol["k"]
    key = f"ndcg@{k}"
    v = result.variants
    lines: list[str] = []

    def ci(name: str, base: str) -> Interval | None:
        return v[name].ci.get(base, {}).get(key) if name in v else None

    if "sentiment_aware" in v:
        c = ci("sentiment_aware", "taste_only")
        verdict = _verdict(c)
        if verdict == "better":
            lines.append(
                f"- **sentiment_aware beats taste_only**: NDCG@{k} {_ci(c)}; the interval "
                "excludes zero."
            )
        else:
            why = "its interval is below zero" if verdict == "worse" else "the interval holds 0"
            lines.append(
                f"- **sentiment_aware does not beat taste_only** here: NDCG@{k} {_ci(c)} ({why})."
            )
            lines.append(_why_not(result))
        c = ci("sentiment_aware", "popularity")
        lines.append(f"- Against popularity, sentiment_aware is {_verdict(c)} (NDCG@{k} {_ci(c)}).")
    personal = [n for n in v if n != "popularity"]
    if personal and all(_verdict(ci(n, "popularity")) == "worse" for n in personal):
        lines.append(
            "- Popularity beats every personalised variant: on this data what is reviewed now "
            "predicts the next review better than the similarity of review texts to a user's "
            "past items (the taste candidates come from the index alone, so popular items outside "
            f"the {result.protocol['settings']['candidates']} nearest cannot be promoted)."
        )
    if "rating_oracle" in v and "sentiment_aware" in v:
        c = ci("rating_oracle", "sentiment_aware")
        verdict = _verdict(c)
        lines.append(
            f"- Model error: with the star rating in place of the model's valence "
            f"(rating_oracle) NDCG@{k} moves by {_ci(c)} against sentiment_aware; "
            + (
                "that gap is what the model's sentiment errors cost here."
                if verdict == "better"
                else "perfect sentiment does no better here, so the model's errors are not "
                "what limits this ranking."
            )
        )
    if "sentiment_aware_no_sentiment" in v and "sentiment_aware" in v:
        c = ci("sentiment_aware_no_sentiment", "sentiment_aware")
        lines.append(
            f"- Sentiment off: with every review counted as liked and mood ignored "
            f"(sentiment_aware_no_sentiment) NDCG@{k} moves by {_ci(c)} against "
            f"sentiment_aware, {_verdict(c)}."
        )
    for name, what in (
        ("seed_formula", "the seeds' z = w * r * s"),
        ("sentiment_stars", "model valence blended with the stars, as the worker does"),
    ):
        if name in v:
            lines.append(
                f"- {name} ({what}) vs taste_only: {_ci(ci(name, 'taste_only'))}, "
                f"{_verdict(ci(name, 'taste_only'))}; vs sentiment_aware: "
                f"{_ci(ci(name, 'sentiment_aware'))}, {_verdict(ci(name, 'sentiment_aware'))}."
            )
    cov = {n: x.metrics["coverage"] for n, x in v.items()}
    if cov:
        widest = max(cov, key=lambda n: cov[n])
        lines.append(
            f"- Coverage: {widest} shows the widest catalog ({cov[widest]:.1%} of the items in "
            f"the index); popularity shows {cov.get('popularity', float('nan')):.1%}."
        )
    return lines


def _why_not(result: BacktestResult) -> str:
    """The data facts that bear on a missing win: size, sparsity, history, model agreement."""
    d, p = result.dataset, result.protocol
    parts = [
        f"{p['reported_points']} reported test points",
        f"density {d.get('density', 0):.3%}",
        f"a median of {d.get('reviews_per_user_median', 0):g} reviews per user",
        f"a median history of {p.get('history_median', 0):g} reviews before a test point",
    ]
    agree = d.get("model_vs_stars")
    if agree:
        parts.append(
            f"the model's valence agrees in sign with the stars on {agree['sign_accuracy']:.1%} "
            f"of polar reviews but finds only {agree['negative_recall']:.1%} of the 1-2 star ones "
            "negative"
        )
    return "  Why: " + "; ".join(parts) + "."


def _data_lines(result: BacktestResult) -> list[str]:
    d = result.dataset
    lines = [
        f"- Data: `{d.get('name', d.get('path', '?'))}` "
        f"(sha256 `{str(d.get('sha256', ''))[:12]}`), "
        f"{d['events']} reviews by {d['users']} users of {d['items']} items, "
        f"{d['first']} .. {d['last']}; density {d.get('density', 0):.4%}.",
    ]
    skipped = d.get("skipped") or {}
    notes = d.get("notes") or {}
    if skipped or notes:
        parts = [f"{k} {n}" for k, n in {**skipped, **notes}.items()]
        lines.append(f"- Loader: {', '.join(parts)} (skipped rows / rows kept with a note).")
    agree = d.get("model_vs_stars")
    if agree:
        lines.append(
            f"- Model vs stars on these reviews: Pearson r {agree['pearson']:.3f} between the "
            f"model's valence and (stars - 3) / 2; sign agreement {agree['sign_accuracy']:.1%} on "
            f"the {agree['polar']} reviews with 1-2 or 4-5 stars "
            f"({agree['negative_recall']:.1%} of the 1-2 star reviews read as negative)."
        )
    return lines


def markdown(result: BacktestResult, command: str) -> str:
    p = result.protocol
    k, depth = p["k"], p["depth"]
    lines = [
        *report_head(result.dataset.get("name", "reviews"), command),
        *_data_lines(result),
        f"- Model: `{p['model_version']}` "
        f"(scores cached as `{result.dataset.get('scores_cache')}`"
        + ("; this run read them from there)." if result.cache_hit else ")."),
        "- Protocol: events replayed in time order through the core (`stream.core.state`: the "
        "folds and `recommend` the worker runs); every test point is ranked from the state "
        "left by strictly earlier events only.",
        f"- Test points: a user's review after an earlier review of theirs and after the "
        f"warm-up ({p['warmup']}: from {p['warmup_until']}); {p['test_points']} in all, "
        f"{p['reported_points']} reported (from {p['reported_from']})"
        + (f", the first {p['tuning_points']} used for tuning only." if p["tuned"] else "."),
        f"- Item index: rebuilt {p['rebuild']} ({p['rebuilds']} builds), each item the mean "
        f"embedding of its {p['reviews_per_item']} latest reviews before the build; an item not "
        "yet in the index cannot be recommended. "
        f"{p['target_in_index_share']:.1%} of the reported targets were in the index at their "
        "time (the ceiling of HR for every variant).",
        f"- Metrics: HR@{k}, NDCG@{k} (one relevant item), MRR over the top {depth} "
        f"(MRR@{depth}), coverage = distinct items in the top-{k} lists / items in the index. "
        f"Intervals: paired bootstrap over test points, {p['resamples']} resamples, seed "
        f"{p['seed']}.",
        "",
        "## Results",
        "",
        *table(result),
        "",
        f"![metrics by variant]({METRICS_PLOT})",
        "",
        f"![NDCG@{k} over time]({TIME_PLOT})",
        "",
        "Variants:",
        "",
        *[f"- `{n}`: {v.about}" for n, v in result.variants.items()],
        "",
        "## What it means",
        "",
        *reading(result),
        "",
    ]
    lines += _tuning_lines(result)
    lines += [
        "## Timings",
        "",
        *[
            f"- {name.removesuffix('_s').replace('_', ' ')}: {sec:.1f} s"
            for name, sec in result.timings.items()
        ],
        "",
    ]
    return "\n".join(lines)


def _tuning_lines(result: BacktestResult) -> list[str]:
    t = result.tuning
    k = result.protocol["k"]
    if t is None:
        return ["## Tuning", "", "Not tuned: the core's default weights were used.", ""]
    best = sorted(t.trials, key=lambda x: -x[1])[:5]
    axes = [*EVIDENCE_AXES.items(), *RANK_AXES.items()]
    return [
        "## Tuning",
        "",
        f"On the {t.points} test points before {_day(t.until_ms)} only, by NDCG@{k} of "
        "sentiment_aware: a coordinate search, one weight at a time with the others at their "
        f"best so far ({t.rounds} round(s), {len(t.trials)} settings tried; a value replaces the "
        f"current one only if it does more than {MIN_GAIN:.0%} better, so noise keeps the "
        "defaults). Values tried: "
        + "; ".join(f"`{name}` {', '.join(f'{v:g}' for v in values)}" for name, values in axes)
        + ". The tuned variants (seed_formula, sentiment_aware, rating_oracle, sentiment_stars) "
        "run with the selection.",
        "",
        f"- Selected evidence weights (`stream.core.taste.EvidenceWeights`): `{_kv(t.evidence)}`",
        f"- Selected rank weights (`stream.core.rank.RankParams`): `{_kv(t.rank)}`",
        f"- NDCG@{k} on the tuning points: {t.score:.4f} selected vs {t.default_score:.4f} "
        "with the core's defaults.",
        *_check_line(result),
        "- Best settings tried: " + "; ".join(f"`{_kv(p)}` {s:.4f}" for p, s in best),
        "",
        f"All trials are in `{TUNING_FILE}`.",
        "",
    ]


def _check_line(result: BacktestResult) -> list[str]:
    check = result.tuning_check
    k = result.protocol["k"]
    if check is None:
        return []
    c = check.get(f"ndcg@{k}")
    return [
        f"- On the reported points, sentiment_aware tuned minus at the defaults: NDCG@{k} "
        f"{_ci(c)}, {_verdict(c)}."
    ]


def _kv(values: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:g}" for k, v in values.items())
