"""Coordinate search of the evidence and rank weights of ``sentiment_aware``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from stream.core.rank import RankParams
from stream.core.taste import EvidenceWeights
from stream.offline.backtest.metrics import point_metrics
from stream.offline.backtest.progress import NoSteps, Steps
from stream.offline.backtest.protocol import Protocol
from stream.offline.backtest.simulate import Params, simulate
from stream.offline.backtest.timeline import Timeline
from stream.offline.backtest.variants import TUNED_ON, VARIANTS
from stream.settings import Settings


def _axis(default: float, values: tuple[float, ...]) -> tuple[float, ...]:
    return (default, *(v for v in values if v != default))


# Tuning searches one weight at a time (coordinate search, up to TUNE_ROUNDS rounds): each axis
# starts at the core's default, and a value replaces the current one only if it beats it by more
# than MIN_GAIN (relative): differences inside the noise keep the defaults.
_EVIDENCE, _RANK = EvidenceWeights(), RankParams()
EVIDENCE_AXES: dict[str, tuple[float, ...]] = {
    # How far review sentiment moves taste evidence. Kept above review_interest (0.3) so that a
    # negative review still pushes taste away, as designed: unconstrained, this data prefers 0.25
    # (in a 5-core set, reviewing an item at all says the user shops its category).
    "review_gain": _axis(_EVIDENCE.review_gain, (0.5, 1.0, 2.0)),
    # The model's review valence calibrated to the platform (0: as the model reads it).
    "review_valence_shift": _axis(_EVIDENCE.review_valence_shift, (0.0, 0.15, 0.3, 0.5, 0.75, 1.0)),
}
RANK_AXES: dict[str, tuple[float, ...]] = {
    "popularity_weight": _axis(_RANK.popularity_weight, (0.0, 0.05, 0.2, 0.5, 1.0, 2.0, 4.0)),
    "affect_weight": _axis(_RANK.affect_weight, (0.0, 0.1, 0.3, 0.6, 1.0, 2.0)),
    "comfort_gain": _axis(_RANK.comfort_gain, (0.0, 2.0, 4.0)),
    "mmr_lambda": _axis(_RANK.mmr_lambda, (0.6, 0.8, 1.0)),
    "neighbour_weight": _axis(_RANK.neighbour_weight, (0.0, 0.3, 1.0, 3.0)),
}
TUNE_ROUNDS = 2
MIN_GAIN = 0.01


@dataclass(frozen=True)
class Tuning:
    evidence: dict[str, float]
    rank: dict[str, float]
    score: float  # NDCG@K on the tuning points with the selection
    default_score: float  # NDCG@K on the tuning points with the core's defaults
    points: int
    until_ms: int
    trials: list[tuple[dict[str, float], float]]  # every setting tried (evidence + rank), in order
    rounds: int


def tune(
    tl: Timeline,
    settings: Settings,
    protocol: Protocol,
    split_ms: int,
    *,
    steps: Steps | None = None,
    model_sha: str = "",
) -> Tuning:
    """Coordinate search of the evidence and rank weights of ``sentiment_aware`` by NDCG@K on the
    test points before ``split_ms``: one axis at a time, the others held at their current best;
    all values of a rank axis are ranked from the same states in one pass."""
    steps = steps or NoSteps()
    variant = VARIANTS[TUNED_ON]
    n_points = int(np.count_nonzero(tl.test & (tl.ts < split_ms)))
    key = f"ndcg@{protocol.k}"
    done: dict[tuple[tuple[str, float], ...], float] = {}
    trials: list[tuple[dict[str, float], float]] = []

    def ident(evidence: dict[str, float], rank: dict[str, float]) -> tuple[tuple[str, float], ...]:
        return tuple(sorted({**evidence, **rank}.items()))

    def evaluate(evidence: dict[str, float], ranks: list[dict[str, float]]) -> list[float]:
        todo = [r for r in ranks if ident(evidence, r) not in done]
        if todo:
            steps.start(f"tuning ({len(trials) + len(todo)} settings)", n_points)
            params = Params(dataclasses.replace(EvidenceWeights(), **evidence))
            results = simulate(
                tl,
                variant,
                params,
                settings,
                protocol,
                rank_overrides=todo,
                top_k=protocol.k,
                until_ms=split_ms,
                steps=steps,
                model_sha=model_sha,
            )
            for r, res in zip(todo, results, strict=True):
                score = float(point_metrics(res.ranks, protocol.k)[key].mean()) if n_points else 0.0
                done[ident(evidence, r)] = score
                trials.append(({**evidence, **r}, score))
        return [done[ident(evidence, r)] for r in ranks]

    evidence = {k: v[0] for k, v in EVIDENCE_AXES.items()}
    rank = {k: v[0] for k, v in RANK_AXES.items()}
    (default_score,) = evaluate(evidence, [rank])
    best, rounds = default_score, 0
    for _ in range(TUNE_ROUNDS):
        rounds += 1
        moved = False
        for axis, values in RANK_AXES.items():
            options = [{**rank, axis: v} for v in values]
            for option, score in zip(options, evaluate(evidence, options), strict=True):
                if score > best * (1 + MIN_GAIN):
                    best, rank, moved = score, option, True
        for axis, values in EVIDENCE_AXES.items():
            for v in values:
                option = {**evidence, axis: v}
                (score,) = evaluate(option, [rank])
                if score > best * (1 + MIN_GAIN):
                    best, evidence, moved = score, option, True
        if not moved:
            break
    return Tuning(evidence, rank, best, default_score, n_points, split_ms, trials, rounds)
