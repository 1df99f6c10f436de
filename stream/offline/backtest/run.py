"""The whole backtest: score, tune, run every variant, compute metrics and intervals."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Unpack

import numpy as np
import numpy.typing as npt

from stream.contract.records import Review
from stream.core.taste import EvidenceWeights
from stream.errors import DatasetError
from stream.offline.backtest.metrics import (
    Interval,
    bootstrap_indices,
    paired_bootstrap,
    point_metrics,
)
from stream.offline.backtest.progress import RunOptions, RunStart, Steps
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
from stream.offline.backtest.timeline import REVIEWS_PER_ITEM, Timeline, build_timeline
from stream.offline.backtest.tuning import Tuning, tune
from stream.offline.backtest.variants import (
    BASELINES,
    DEFAULT_VARIANTS,
    NO_SENTIMENT,
    TUNED_ON,
    VARIANTS,
)
from stream.ports import Scores, SentimentModel
from stream.settings import Settings


def run_backtest(
    events: Sequence[Review],
    model: SentimentModel,
    settings: Settings,
    protocol: Protocol,
    **options: Unpack[RunOptions],
) -> BacktestResult:
    """Score (or load cached scores), tune, run every variant, compute metrics and intervals."""
    run = RunStart.of(options, DEFAULT_VARIANTS)
    steps, timings, started = run.steps, run.timings, run.started
    texts = [e.text for e in events]
    mkey = model_key(model, settings.model_dir)
    tkey = texts_key(texts)
    cache_file = None if run.cache_dir is None else run.cache_dir / mkey / f"{tkey}.npz"
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

    replay = _Run(tl, settings, protocol, report_mask, tuning, steps, mkey, timings)
    results = replay.variants(run.variants)
    idx = bootstrap_indices(int(report_mask.sum()), protocol.resamples, protocol.seed)
    _add_intervals(results, report_mask, protocol.k, idx)
    check = None if tuning is None else replay.defaults_check(tuning, results.get(TUNED_ON), idx)
    # only the variants asked for are reported (baselines always run: they anchor the CIs)
    shown = {n: results[n] for n in run.variants}
    timings["total_s"] = time.perf_counter() - started
    info = _dataset_info(events, scores, run.dataset_info, tl)
    info["scores_cache"] = None if cache_file is None else str(cache_file)
    proto = _protocol_info(tl, protocol, settings, report_mask, tuning, model.version, mkey)
    return BacktestResult(info, proto, shown, tuning, tl, report_mask, timings, hit, check)


@dataclass(frozen=True, eq=False)
class _Run:
    """What every variant of one run shares."""

    tl: Timeline
    settings: Settings
    protocol: Protocol
    report_mask: npt.NDArray[np.bool_]
    tuning: Tuning | None
    steps: Steps
    model_sha: str
    timings: dict[str, float]

    def variants(self, variants: Sequence[str]) -> dict[str, VariantResult]:
        """The baselines and ``variants``, each simulated over every test point."""
        return {name: self.variant(name) for name in dict.fromkeys([*BASELINES, *variants])}

    def tuned_params(self, tuning: Tuning) -> Params:
        return Params(dataclasses.replace(EvidenceWeights(), **tuning.evidence), tuning.rank)

    def variant(self, name: str) -> VariantResult:
        v = VARIANTS[name]
        params = Params(NO_SENTIMENT) if name == "taste_only" else Params()
        if v.tuned and self.tuning is not None:
            params = self.tuned_params(self.tuning)
        self.steps.start(f"variant {name}", int(self.tl.test.sum()))
        t0 = time.perf_counter()
        (points,) = simulate(
            self.tl,
            v,
            params,
            self.settings,
            self.protocol,
            steps=self.steps,
            model_sha=self.model_sha,
        )
        seconds = time.perf_counter() - t0
        described = {
            "ranker": v.ranker,
            "sentiment": v.sentiment,
            "stars_sent": v.stars,
            "evidence": dataclasses.asdict(params.evidence),
            "rank": dict(params.rank),
        }
        self.timings[f"variant_{name}_s"] = seconds
        return VariantResult(
            name,
            v.about,
            described,
            points,
            summarise(points, self.report_mask, self.protocol.k),
            seconds=seconds,
        )

    def defaults_check(
        self, tuning: Tuning, tuned: VariantResult | None, idx: npt.NDArray[np.int64]
    ) -> dict[str, Interval]:
        """sentiment_aware tuned minus at the core's defaults on the reported points."""
        variant, mask, k = VARIANTS[TUNED_ON], self.report_mask, self.protocol.k
        self.steps.start(f"{TUNED_ON} at the defaults", int(self.tl.test.sum()))
        t0 = time.perf_counter()
        (plain,) = simulate(
            self.tl,
            variant,
            Params(),
            self.settings,
            self.protocol,
            steps=self.steps,
            model_sha=self.model_sha,
        )
        self.timings["defaults_check_s"] = time.perf_counter() - t0
        if tuned is None:
            (tuned_points,) = simulate(
                self.tl,
                variant,
                self.tuned_params(tuning),
                self.settings,
                self.protocol,
                model_sha=self.model_sha,
            )
        else:
            tuned_points = tuned.points
        a = point_metrics(tuned_points.ranks[mask], k)
        b = point_metrics(plain.ranks[mask], k)
        return {m: paired_bootstrap(a[m], b[m], indices=idx) for m in a}


def _add_intervals(
    results: dict[str, VariantResult],
    mask: npt.NDArray[np.bool_],
    k: int,
    idx: npt.NDArray[np.int64],
) -> None:
    """Each variant's paired bootstrap intervals against the baselines (and sentiment_aware)."""
    per = {n: point_metrics(r.points.ranks[mask], k) for n, r in results.items()}
    for name, r in results.items():
        # the two baselines go to metrics.json; the pairs against sentiment_aware only to the
        # report (what the model's errors cost, what the blend with stars or the seeds' formula do)
        extra = (TUNED_ON,) if name != TUNED_ON and TUNED_ON in results else ()
        for base in (*BASELINES, *extra):
            r.ci[base] = {
                m: paired_bootstrap(per[name][m], per[base][m], indices=idx) for m in per[name]
            }


def _dataset_info(
    events: Sequence[Review],
    scores: Scores,
    dataset_info: Mapping[str, Any] | None,
    tl: Timeline,
) -> dict[str, Any]:
    users = len({e.user_id for e in events})
    items = len({e.item_id for e in events})
    info = dict(dataset_info or {})
    info.update(
        events=len(events),
        users=users,
        items=items,
        first=iso_day(int(tl.ts[0])),
        last=iso_day(int(tl.ts[-1])),
        density=len(events) / max(users * items, 1),
        reviews_per_user_median=float(np.median(list(Counter(e.user_id for e in events).values()))),
        texts_truncated_by_model=int(np.count_nonzero(scores.truncated)),
        model_vs_stars=model_agreement(events, scores),
    )
    return info


def _protocol_info(
    tl: Timeline,
    protocol: Protocol,
    settings: Settings,
    report_mask: npt.NDArray[np.bool_],
    tuning: Tuning | None,
    model_version: str,
    model_sha: str,
) -> dict[str, Any]:
    point_ts = tl.ts[tl.test]
    history = history_at_points(tl)[report_mask]
    return {
        "k": protocol.k,
        "depth": protocol.depth,
        "rebuild": protocol.rebuild,
        "rebuilds": len(tl.rebuilds),
        "reviews_per_item": REVIEWS_PER_ITEM,
        "warmup": protocol.warmup,
        "warmup_until": iso_day(tl.warmup_ms),
        "test_points": int(tl.test.sum()),
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
        "model_version": model_version,
        "model_key": model_sha,
        "settings": {
            "candidates": settings.candidates,
            "taste_half_life_s": settings.taste_half_life_s,
            "affect_half_life_s": settings.affect_half_life_s,
            "popularity_half_life_s": settings.popularity_half_life_s,
            "half_life_review_s": settings.half_life_review_s,
        },
    }
