"""ReDial backtest: coordinate search of the rank and engagement weights."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from stream.core.neighbours import EngagementWeights
from stream.core.taste import EvidenceWeights
from stream.offline import ranking_metrics
from stream.offline.backtest import (
    NoSteps,
    Steps,
)
from stream.offline.redial_backtest.plan import Plan, Protocol
from stream.offline.redial_backtest.replay import Params, replay
from stream.offline.redial_backtest.variants import (
    ENGAGEMENT_AXES,
    KS,
    MIN_GAIN,
    NDCG_K,
    RANK_AXES,
    TUNE_KEY,
    TUNED_ON,
    VARIANTS,
)
from stream.settings import Settings


@dataclass(frozen=True)
class Tuning:
    engagement: dict[str, float]
    rank: dict[str, float]
    score: float
    default_score: float
    points: int
    trials: list[tuple[dict[str, float], float]]


def _params(engagement: Mapping[str, float], rank: Mapping[str, float]) -> Params:
    eng = dataclasses.replace(EngagementWeights(), **engagement)  # type: ignore[arg-type]
    # the taste side follows the same reading of a mention (interest + gain * valence)
    evidence = dataclasses.replace(
        EvidenceWeights(), chat_interest=eng.chat_interest, chat_gain=eng.chat_gain
    )
    return Params(evidence, eng, dict(rank))


def tune(
    plan: Plan, settings: Settings, protocol: Protocol, *, steps: Steps | None = None
) -> Tuning:
    """Coordinate search (one round) on Recall@10 of the tuning points: rank axes ranked from the
    same states in one replay each, engagement axes one replay per value."""
    steps = steps or NoSteps()
    variant = VARIANTS[TUNED_ON]
    trials: list[tuple[dict[str, float], float]] = []
    n_points = sum(1 for s in plan.steps if s.point is not None and s.part == "tune")

    def evaluate(engagement: dict[str, float], ranks: list[dict[str, float]]) -> list[float]:
        steps.start(f"tuning ({len(trials) + len(ranks)} settings)", n_points)
        results = replay(
            plan,
            variant,
            _params(engagement, {}),
            settings,
            protocol,
            score="tune",
            rank_overrides=ranks,
            steps=steps,
        )
        scores = []
        for rk, res in zip(ranks, results, strict=True):
            m = ranking_metrics.summarise(res.ranks, KS, NDCG_K)[TUNE_KEY]
            trials.append(({**engagement, **rk}, m))
            scores.append(m)
        return scores

    engagement = {k: v[0] for k, v in ENGAGEMENT_AXES.items()}
    rank = {k: v[0] for k, v in RANK_AXES.items()}
    (default_score,) = evaluate(engagement, [rank])
    best = default_score
    for axis, values in RANK_AXES.items():
        options = [{**rank, axis: v} for v in values[1:]]
        for option, score in zip(options, evaluate(engagement, options), strict=True):
            if score > best * (1 + MIN_GAIN):
                best, rank = score, option
    for axis, values in ENGAGEMENT_AXES.items():
        for v in values[1:]:
            option = {**engagement, axis: v}
            (score,) = evaluate(option, [rank])
            if score > best * (1 + MIN_GAIN):
                best, engagement = score, option
    return Tuning(engagement, rank, best, default_score, n_points, trials)
