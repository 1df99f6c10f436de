"""stream.offline.backtest.run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from stream.contract.records import Review
from stream.errors import DatasetError
from stream.offline import backtest as bt
from tests.unit.offline.backtest.helpers import (
    FAST,
    SETTINGS,
    T0,
    WordModel,
    synthetic_reviews,
)


def test_run_backtest_is_deterministic_and_reports_the_later_points(tmp_path: Path) -> None:
    events = synthetic_reviews()
    model = WordModel()
    runs = [
        bt.run_backtest(events, model, SETTINGS, FAST, cache_dir=tmp_path, dataset_info={"n": 1})
        for _ in range(2)
    ]
    assert model.scored == len(events)  # the second run read the cache
    a, b = (r.metrics_json() for r in runs)
    assert a == b
    assert set(a) == {"variants", "dataset", "protocol"}
    assert set(a["variants"]) == set(bt.DEFAULT_VARIANTS)
    for entry in a["variants"].values():
        assert set(entry) == {
            "ndcg@10",
            "hr@10",
            "mrr",
            "coverage",
            "ci95_vs_popularity",
            "ci95_vs_taste_only",
        }
        assert 0.0 <= entry["ndcg@10"] <= entry["hr@10"] <= 1.0
        assert 0.0 < entry["coverage"] <= 1.0
        ci = entry["ci95_vs_taste_only"]["ndcg@10"]
        assert ci["low"] <= ci["diff"] <= ci["high"]
    assert a["variants"]["taste_only"]["ci95_vs_taste_only"]["ndcg@10"]["diff"] == 0.0
    r = runs[0]
    tuning = r.tuning
    assert tuning is not None
    point_ts = r.timeline.ts[r.timeline.test]
    assert (point_ts[r.report_mask] >= tuning.until_ms).all()
    assert (point_ts[~r.report_mask] < tuning.until_ms).all()
    assert a["protocol"]["reported_points"] == int(r.report_mask.sum())
    assert a["protocol"]["selected"] == {"evidence": tuning.evidence, "rank": tuning.rank}
    assert "sentiment_aware" in r.variants["rating_oracle"].ci  # a report-only pair
    check = r.tuning_check
    assert check is not None and check["ndcg@10"].low <= check["ndcg@10"].diff
    assert a["dataset"]["model_vs_stars"]["sign_accuracy"] == 1.0  # "good"/"bad" follow stars
    other = bt.run_backtest(
        events,
        model,
        SETTINGS,
        bt.Protocol(k=10, depth=20, warmup="30d", resamples=200, seed=5),
        cache_dir=tmp_path,
    )
    c = other.metrics_json()
    assert (
        c["variants"]["sentiment_aware"]["ndcg@10"] == a["variants"]["sentiment_aware"]["ndcg@10"]
    )
    assert (
        c["variants"]["sentiment_aware"]["ci95_vs_popularity"]
        != (a["variants"]["sentiment_aware"]["ci95_vs_popularity"])
    )


def test_run_without_tuning_reports_every_point_and_only_asked_variants() -> None:
    events = synthetic_reviews(users=24, per_user=6)
    protocol = bt.Protocol(k=10, depth=20, warmup="0", tune=False, resamples=50)
    result = bt.run_backtest(events, WordModel(), SETTINGS, protocol, variants=["seed_formula"])
    assert result.tuning is None and result.report_mask.all()
    assert list(result.variants) == ["seed_formula"]
    assert set(result.variants["seed_formula"].ci) == {"popularity", "taste_only"}
    assert result.tuning_check is None
    tuned = bt.run_backtest(
        events,
        WordModel(),
        SETTINGS,
        dataclasses.replace(protocol, tune=True),
        variants=["seed_formula"],
    )
    assert tuned.tuning is not None and tuned.tuning_check is not None
    assert "sentiment_aware" not in tuned.variants["seed_formula"].ci  # it did not run


def test_no_test_points_is_a_readable_error() -> None:
    events = [
        Review(
            event_id=f"e{i}", user_id=f"u{i}", item_id="i", text="guitar good", ts=T0 + i, rating=5
        )
        for i in range(5)
    ]
    with pytest.raises(DatasetError, match="no test points"):
        bt.run_backtest(events, WordModel(), SETTINGS, FAST)
    with pytest.raises(DatasetError, match="no review events"):
        bt.run_backtest([], WordModel(), SETTINGS, FAST)
