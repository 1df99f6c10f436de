"""Recall@K, NDCG@K, MRR and coverage for one relevant item per point, worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stream.offline.backtest import point_metrics
from stream.offline.ranking_metrics import (
    by_group,
    coverage,
    per_point,
    rank_in_list,
    rank_in_scores,
    summarise,
)


def test_rank_in_list_skips_excluded_items() -> None:
    assert rank_in_list(["a", "b", "c"], "c") == 3
    assert rank_in_list(["a", "b", "c"], "c", exclude={"a"}) == 2
    assert rank_in_list(["a", "b"], "z") == 0
    assert rank_in_list(["a", "b"], "a", exclude={"a"}) == 0


def test_rank_in_scores_over_the_catalog() -> None:
    s = [0.1, 0.9, 0.5, 0.5, -1.0]
    assert rank_in_scores(s, 1) == 1
    assert rank_in_scores(s, 2) == 2  # tie with row 3: the lower row goes first
    assert rank_in_scores(s, 3) == 3
    assert rank_in_scores(s, 3, exclude=[1, 2]) == 1
    assert rank_in_scores(s, 3, exclude=np.array([3])) == 0
    assert rank_in_scores([math.nan, 0.2, 0.1], 2) == 2  # a non-finite score ranks nowhere
    assert rank_in_scores([0.0, 0.0, 0.0], 2) == 3  # constant scores earn nothing


def test_per_point_and_summary_by_hand() -> None:
    ranks = [1, 3, 12, 0]
    p = per_point(ranks, ks=(1, 10, 50), ndcg_k=10)
    assert p["recall@1"].tolist() == [1, 0, 0, 0]
    assert p["recall@10"].tolist() == [1, 1, 0, 0]
    assert p["recall@50"].tolist() == [1, 1, 1, 0]
    # ndcg@10: 1/log2(2) = 1, 1/log2(4) = 0.5, beyond 10 -> 0
    assert p["ndcg@10"].tolist() == [1.0, 0.5, 0.0, 0.0]
    assert p["rr"] == pytest.approx([1, 1 / 3, 1 / 12, 0])
    s = summarise(ranks, lists=[["a", "b"], ["b", "c"]], catalog_size=10)
    assert s["n"] == 4 and s["recall@10"] == 0.5 and s["ndcg@10"] == 0.375
    assert s["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 12) / 4)
    assert s["coverage"] == 0.3
    assert summarise([]) == {"n": 0.0, "recall@1": 0.0, "recall@10": 0.0, "recall@50": 0.0,
                             "ndcg@10": 0.0, "mrr": 0.0}  # fmt: skip


def test_agrees_with_the_backtest_metrics() -> None:
    ranks = np.array([0, 1, 2, 5, 10, 11, 40])
    ours, theirs = per_point(ranks, ks=(10,), ndcg_k=10), point_metrics(ranks, 10)
    assert np.array_equal(ours["recall@10"], theirs["hr@10"])
    assert np.allclose(ours["ndcg@10"], theirs["ndcg@10"])
    assert np.allclose(ours["rr"], theirs["mrr"])


def test_coverage_and_groups() -> None:
    assert coverage([["a", "b", "c"], ["a"]], 4, k=1) == 0.25
    assert coverage([], 0) == 0.0
    g = by_group([1, 0, 2], ["x", "y", "x"], ks=(1,), ndcg_k=1)
    assert g["x"]["recall@1"] == 0.5 and g["y"]["recall@1"] == 0.0
    with pytest.raises(ValueError):
        by_group([1], ["a", "b"])
