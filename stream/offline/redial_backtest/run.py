"""ReDial backtest: a whole run (plan, tuning, every variant, intervals)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any, Unpack

import numpy as np

from stream.errors import DatasetError
from stream.offline import ranking_metrics
from stream.offline.backtest import (
    Steps,
    bootstrap_indices,
    paired_bootstrap,
)
from stream.offline.backtest.progress import RunOptions, RunStart
from stream.offline.redial_backtest.plan import Plan, Protocol, RedialSplit, make_plan
from stream.offline.redial_backtest.replay import Params, replay
from stream.offline.redial_backtest.results import RedialResult, VariantOutcome
from stream.offline.redial_backtest.tuning import Tuning, _params, tune
from stream.offline.redial_backtest.variants import (
    BASELINES,
    DEFAULT_VARIANTS,
    ENGAGEMENT_AXES,
    KS,
    NDCG_K,
    VARIANTS,
    RedialVariant,
)
from stream.ports import SentimentModel
from stream.settings import Settings


def _variant_params(v: RedialVariant, tuning: Tuning | None) -> Params:
    if v.tuned and tuning is not None:
        return _params(tuning.engagement, tuning.rank)
    if v.tuned:
        return _params({k: a[0] for k, a in ENGAGEMENT_AXES.items()}, {})
    return _params({}, {})


def _run_variant(
    plan: Plan,
    v: RedialVariant,
    tuning: Tuning | None,
    settings: Settings,
    protocol: Protocol,
    steps: Steps,
) -> VariantOutcome:
    """Replay one variant over the dev points: its ranks, top lists, metrics and settings."""
    params = _variant_params(v, tuning)
    steps.start(f"variant {v.name}", plan.counts["dev_points"])
    t0 = time.perf_counter()
    (res,) = replay(plan, v, params, settings, protocol, steps=steps)
    seconds = time.perf_counter() - t0
    ranks = np.asarray(res.ranks, dtype=np.int64)
    metrics = ranking_metrics.summarise(ranks, KS, NDCG_K, lists=res.tops, catalog_size=plan.movies)
    described = {
        "ranker": v.ranker,
        "sentiment": v.sentiment,
        "engagement": dataclasses.asdict(params.engagement),
        "rank": dict(params.rank),
    }
    return VariantOutcome(v.name, v.about, ranks, res.tops, metrics, described, seconds)


def _add_intervals(results: Mapping[str, VariantOutcome], n_dev: int, protocol: Protocol) -> None:
    """Paired bootstrap intervals of every variant against each baseline (not itself)."""
    idx = bootstrap_indices(n_dev, protocol.resamples, protocol.seed)
    per = {n: ranking_metrics.per_point(r.ranks, KS, NDCG_K) for n, r in results.items()}
    for name, r in results.items():
        for base in BASELINES:
            if base == name:
                continue
            r.ci[base] = {
                ("mrr" if m == "rr" else m): paired_bootstrap(
                    per[name][m], per[base][m], indices=idx
                )
                for m in per[name]
            }


def _protocol_info(
    protocol: Protocol, tuning: Tuning | None, model: SentimentModel, settings: Settings
) -> dict[str, Any]:
    return {
        "depth": protocol.depth,
        "ks": list(KS),
        "ndcg_k": NDCG_K,
        "tuned": tuning is not None,
        "tune_share": protocol.tune_share if tuning is not None else None,
        "resamples": protocol.resamples,
        "seed": protocol.seed,
        "model_version": model.version,
        "reply_context": True,
        "exclusions": "movies mentioned earlier in the dialogue (either side)",
        "candidates": settings.candidates,
    }


def run_redial(
    data: RedialSplit,
    model: SentimentModel,
    settings: Settings,
    protocol: Protocol,
    **options: Unpack[RunOptions],
) -> RedialResult:
    """Score (or load cached scores), tune, replay every variant, metrics and intervals."""
    run = RunStart.of(options, DEFAULT_VARIANTS)
    steps, timings = run.steps, run.timings
    plan, info = make_plan(*data, model, settings, protocol, cache_dir=run.cache_dir, steps=steps)
    timings["scoring_s"] = time.perf_counter() - run.started
    n_dev = plan.counts["dev_points"]
    if n_dev == 0:
        raise DatasetError("no test points in the dev dialogues")
    tuning = None
    t0 = time.perf_counter()
    if protocol.tune and plan.counts["tune_points"] > 0:
        tuning = tune(plan, settings, protocol, steps=steps)
    timings["tuning_s"] = time.perf_counter() - t0
    results: dict[str, VariantOutcome] = {}
    for name in dict.fromkeys([*BASELINES, *run.variants]):
        results[name] = _run_variant(plan, VARIANTS[name], tuning, settings, protocol, steps)
        timings[f"variant_{name}_s"] = results[name].seconds
    _add_intervals(results, n_dev, protocol)
    timings["total_s"] = time.perf_counter() - run.started
    shown = {n: results[n] for n in run.variants}
    dataset = {
        **dict(run.dataset_info or {}),
        **info,
        "train_dialogues": len(data.train),
        "dev_dialogues": len(data.dev),
    }
    proto = _protocol_info(protocol, tuning, model, settings)
    return RedialResult(dataset, proto, shown, tuning, timings)
