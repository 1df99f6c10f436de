"""Metrics and threshold tuning (numpy only), shared by training, export and tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stream.ports import SENTIMENTS

NEG, POS = SENTIMENTS.index("negative"), SENTIMENTS.index("positive")
THRESHOLD_GRID = np.round(np.arange(0.02, 0.951, 0.01), 2)


def accuracy(pred: npt.NDArray[np.int64], gold: npt.NDArray[np.int64]) -> float:
    return float(np.mean(pred == gold)) if len(gold) else 0.0


def binary_accuracy(probs: npt.NDArray[np.float32], gold: npt.NDArray[np.int64]) -> float:
    """SST-2 style: positive iff P(positive) > P(negative); neutral mass is ignored."""
    pred = np.where(probs[:, POS] > probs[:, NEG], POS, NEG)
    return accuracy(pred, gold)


def f1_scores(pred: npt.NDArray[np.bool_], gold: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Per-column F1 of boolean (n, L) matrices; a label with no gold and no predicted hits is 0."""
    tp = np.sum(pred & gold, axis=0).astype(np.float64)
    fp = np.sum(pred & ~gold, axis=0).astype(np.float64)
    fn = np.sum(~pred & gold, axis=0).astype(np.float64)
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def macro_f1(
    probs: npt.NDArray[np.float32], gold: npt.NDArray[np.bool_], thresholds: npt.NDArray[np.float64]
) -> float:
    return float(np.mean(f1_scores(probs >= thresholds[None, :], gold)))


def tune_thresholds(
    probs: npt.NDArray[np.float32],
    gold: npt.NDArray[np.bool_],
    grid: npt.NDArray[np.float64] = THRESHOLD_GRID,
) -> npt.NDArray[np.float64]:
    """Per label, the grid threshold with the best F1 (ties go to the one nearest 0.5)."""
    best = np.full(probs.shape[1], 0.5)
    for j in range(probs.shape[1]):
        scores = np.array(
            [f1_scores((probs[:, j] >= t)[:, None], gold[:, j : j + 1])[0] for t in grid]
        )
        top = np.flatnonzero(scores >= scores.max() - 1e-12)
        best[j] = grid[top[np.argmin(np.abs(grid[top] - 0.5))]] if scores.max() > 0 else 0.5
    return best


def multi_hot(labels: list[tuple[int, ...]], width: int) -> npt.NDArray[np.bool_]:
    out = np.zeros((len(labels), width), dtype=bool)
    for i, ids in enumerate(labels):
        out[i, list(ids)] = True
    return out
