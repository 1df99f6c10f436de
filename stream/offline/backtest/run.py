"""The whole backtest: score, tune, run every variant, compute metrics and intervals."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stream.contract.records import Review
from stream.core.taste import EvidenceWeights
from stream.errors import DatasetError
from stream.offline.backtest.metrics import (
    Interval,
    bootstrap_indices,
    paired_bootstrap,
    point_metrics,
)
from stream.offline.backtest.progress import NoSteps, Steps
from stream.offline.backtest.protocol import Protocol, iso_day
from stream.offline.backtest.results import (
    BacktestResult,
    VariantResult,
    history_at_points,
    model_agreement,
    reachable_share,
    split_time,
    summarise,
)
from stream.offline.backtest.scores import model_key, score_texts, texts_key
from stream.offline.backtest.simulate import Params, simulate
from stream.offline.backtest.timeline import REVIEWS_PER_ITEM, build_timeline
from stream.offline.backtest.tuning import Tuning, tune
from stream.offline.backtest.variants import (
    BASELINES,
    DEFAULT_VARIANTS,
    NO_SENTIMENT,
    TUNED_ON,
    VARIANTS,
)
from stream.ports import SentimentModel
from stream.settings import Settings


def run_backtest(
    events: Sequence[Review],
    model: SentimentModel,
    settings: Settings,
    protocol: Protocol,
    *,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    dataset_info: Mapping[str, Any] | None = None,
    cache_dir: Path | None = None,
    steps: Steps | None = None,
) -> BacktestResult:
    """Score (or load cached scores), tune, run every variant, compute metrics and intervals."""
    steps = steps or NoSteps()
    timings: dict[str, float] = {}
    started = time.perf_counter()
    texts = [e.text for e in events]
    mkey = model_key(model, settings.model_dir)
    tkey = texts_key(texts)
    cache_file = None if cache_dir is None else cache_dir / mkey / f"{tkey}.npz"
    scores, hit = score_texts(texts, model, cache_file=cache_file, steps=steps)
    timings["scoring_s"] = time.perf_counter() - started
    tl = build_timeline(events, scores, protocol)
    n_points = int(tl.test.sum())
    if n_points == 0:
        raise DatasetError(
            "no test points: no user has a review after both an earlier review of theirs and "
            f"the warm-up ({protocol.warmup}); lower --warmup or use more data"
        )

    split = split_time(tl, protocol.tune_share) if protocol.tune else None
    tuning: Tuning | None = None
    t0 = time.perf_counter()
    if split is not None:
        tuning = tune(tl, settings, protocol, split, steps=steps, model_sha=mkey)
    timings["tuning_s"] = time.perf_counter() - t0
    point_ts = tl.ts[tl.test]
    report_mask = point_ts >= split if split is not None else np.ones(n_points, dtype=np.bool_)

    results: dict[str, VariantResult] = {}
    for name in dict.fromkeys([*BASELINES, *variants]):
        v = VARIANTS[name]
        params = Params(NO_SENTIMENT) if name == "taste_only" else Params()
        if v.tuned and tuning is not None:
            params = Params(dataclasses.replace(EvidenceWeights(), **tuning.evidence), tuning.rank)
        steps.start(f"variant {name}", n_points)
        t0 = time.perf_counter()
        (points,) = simulate(tl, v, params, settings, protocol, steps=steps, model_sha=mkey)
        seconds = time.perf_counter() - t0
        described = {
            "ranker": v.ranker,
            "sentiment": v.sentiment,
            "stars_sent": v.stars,
            "evidence": dataclasses.asdict(params.evidence),
            "rank": dict(params.rank),
        }
        results[name] = VariantResult(
            name,
            v.about,
            described,
            points,
            summarise(points, report_mask, protocol.k),
            seconds=seconds,
        )
        timings[f"variant_{name}_s"] = seconds

    idx = bootstrap_indices(int(report_mask.sum()), protocol.resamples, protocol.seed)
    per = {n: point_metrics(r.points.ranks[report_mask], protocol.k) for n, r in results.items()}
    for name, r in results.items():
        # the two baselines go to metrics.json; the pairs against sentiment_aware only to the
        # report (what the model's errors cost, what the blend with stars or the seeds' formula do)
        extra = (TUNED_ON,) if name != TUNED_ON and TUNED_ON in results else ()
        for base in (*BASELINES, *extra):
            r.ci[base] = {
                m: paired_bootstrap(per[name][m], per[base][m], indices=idx) for m in per[name]
            }
    check: dict[str, Interval] | None = None
    if tuning is not None:
        steps.start(f"{TUNED_ON} at the defaults", n_points)
        t0 = time.perf_counter()
        (plain,) = simulate(
            tl, VARIANTS[TUNED_ON], Params(), settings, protocol, steps=steps, model_sha=mkey
        )
        timings["defaults_check_s"] = time.perf_counter() - t0
        tuned = results.get(TUNED_ON)
        if tuned is None:
            tuned_params = Params(
                dataclasses.replace(EvidenceWeights(), **tuning.evidence), tuning.rank
            )
            (tuned_points,) = simulate(
                tl, VARIANTS[TUNED_ON], tuned_params, settings, protocol, model_sha=mkey
            )
        else:
            tuned_points = tuned.points
        a = point_metrics(tuned_points.ranks[report_mask], protocol.k)
        b = point_metrics(plain.ranks[report_mask], protocol.k)
        check = {m: paired_bootstrap(a[m], b[m], indices=idx) for m in a}
    # only the variants asked for are reported (baselines always run: they anchor the CIs)
    shown = {n: results[n] for n in variants}
    history = history_at_points(tl)[report_mask]
    timings["total_s"] = time.perf_counter() - started
    info = dict(dataset_info or {})
    info.update(
        events=len(events),
        users=len({e.user_id for e in events}),
        items=len({e.item_id for e in events}),
        first=iso_day(int(tl.ts[0])),
        last=iso_day(int(tl.ts[-1])),
        density=len(events)
        / max(len({e.user_id for e in events}) * len({e.item_id for e in events}), 1),
        reviews_per_user_median=float(np.median(list(Counter(e.user_id for e in events).values()))),
        texts_truncated_by_model=int(np.count_nonzero(scores.truncated)),
        model_vs_stars=model_agreement(events, scores),
        scores_cache=None if cache_file is None else str(cache_file),
    )
    proto = {
        "k": protocol.k,
        "depth": protocol.depth,
        "rebuild": protocol.rebuild,
        "rebuilds": len(tl.rebuilds),
        "reviews_per_item": REVIEWS_PER_ITEM,
        "warmup": protocol.warmup,
        "warmup_until": iso_day(tl.warmup_ms),
        "test_points": n_points,
        "reported_points": int(report_mask.sum()),
        "reported_from": iso_day(int(point_ts[report_mask][0])) if report_mask.any() else None,
        "tuned": tuning is not None,
        "tune_share": protocol.tune_share if tuning is not None else None,
        "tuning_points": tuning.points if tuning is not None else 0,
        "selected": None if tuning is None else {"evidence": tuning.evidence, "rank": tuning.rank},
        "target_in_index_share": round(reachable_share(tl, report_mask), 4),
        "history_median": float(np.median(history)) if history.size else 0.0,
        "resamples": protocol.resamples,
        "seed": protocol.seed,
        "model_version": model.version,
        "model_key": mkey,
        "settings": {
            "candidates": settings.candidates,
            "taste_half_life_s": settings.taste_half_life_s,
            "affect_half_life_s": settings.affect_half_life_s,
            "popularity_half_life_s": settings.popularity_half_life_s,
            "half_life_review_s": settings.half_life_review_s,
        },
    }
    return BacktestResult(info, proto, shown, tuning, tl, report_mask, timings, hit, check)
