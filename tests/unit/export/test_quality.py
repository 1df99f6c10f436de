"""Metrics and per-label threshold tuning."""

from __future__ import annotations

import numpy as np

from export.quality import binary_accuracy, f1_scores, macro_f1, multi_hot, tune_thresholds


def test_f1_per_column() -> None:
    gold = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=bool)
    pred = np.array([[1, 0], [0, 0], [1, 0], [0, 0]], dtype=bool)
    # column 0: tp 1, fp 1, fn 1 -> 0.5; column 1: tp 0 -> 0
    np.testing.assert_allclose(f1_scores(pred, gold), [0.5, 0.0])


def test_binary_accuracy_ignores_neutral_mass() -> None:
    probs = np.array([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1001], [0.6, 0.1, 0.3]], dtype=np.float32)
    assert binary_accuracy(probs, np.array([0, 2, 2])) == 2 / 3


def test_tuned_thresholds_beat_half_on_shifted_scores() -> None:
    rng = np.random.default_rng(0)
    gold = rng.random((400, 3)) < 0.2
    # positives score 0.15-0.35, negatives 0-0.2: the best cut sits well below 0.5
    probs = np.where(gold, 0.15 + 0.2 * rng.random(gold.shape), 0.2 * rng.random(gold.shape))
    thr = tune_thresholds(probs.astype(np.float32), gold)
    assert np.all(thr < 0.3)
    assert macro_f1(probs, gold, thr) > 0.8 > macro_f1(probs, gold, np.full(3, 0.5))


def test_label_without_positives_keeps_half() -> None:
    probs = np.random.default_rng(1).random((50, 1)).astype(np.float32)
    assert tune_thresholds(probs, np.zeros((50, 1), dtype=bool))[0] == 0.5


def test_multi_hot() -> None:
    assert multi_hot([(0, 2), (1,)], 3).tolist() == [[True, False, True], [False, True, False]]
