"""stream.offline.backtest.metrics."""

from __future__ import annotations

import numpy as np
import pytest

from stream.offline import backtest as bt


def test_metrics_against_hand_computed_values() -> None:
    m = bt.point_metrics([1, 3, 0, 11, 2], k=10)
    assert m["hr@10"].tolist() == [1, 1, 0, 0, 1]
    assert m["ndcg@10"] == pytest.approx([1.0, 0.5, 0.0, 0.0, 1 / np.log2(3)])
    assert m["mrr"] == pytest.approx([1.0, 1 / 3, 0.0, 1 / 11, 0.5])
    assert m["ndcg@10"].mean() == pytest.approx((1 + 0.5 + 0.6309298) / 5)
    assert m["mrr"].mean() == pytest.approx((1 + 1 / 3 + 1 / 11 + 0.5) / 5)
    assert bt.point_metrics([3], k=2)["hr@2"].tolist() == [0.0]


def test_bootstrap_interval_contains_the_true_difference_and_is_seeded() -> None:
    rng = np.random.default_rng(7)
    n = 3000
    base = (rng.random(n) < 0.2).astype(float)
    better = np.where(rng.random(n) < 0.125, 1.0, base)  # P(hit) = 0.2 + 0.8 * 0.125 = 0.3
    ci = bt.paired_bootstrap(better, base, resamples=1000, seed=1)
    assert ci.low < 0.1 < ci.high
    assert ci.low > 0.0  # a real improvement of this size is detected at n = 3000
    assert ci == bt.paired_bootstrap(better, base, resamples=1000, seed=1)
    assert ci != bt.paired_bootstrap(better, base, resamples=1000, seed=2)
    null = bt.paired_bootstrap(base, rng.permutation(base), resamples=1000, seed=1)
    assert null.low < 0.0 < null.high
    assert bt.paired_bootstrap([], [], resamples=10) == bt.Interval(0.0, 0.0, 0.0)
