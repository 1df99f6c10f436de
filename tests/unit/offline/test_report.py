"""Backtest report files: they exist, parse, and the text follows the intervals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stream.offline import backtest as bt
from stream.offline import report
from stream.settings import Settings
from tests.unit.offline.backtest.helpers import WordModel, synthetic_reviews

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result() -> bt.BacktestResult:
    protocol = bt.Protocol(k=10, depth=20, warmup="30d", resamples=100)
    return bt.run_backtest(
        synthetic_reviews(users=30, per_user=8),
        WordModel(),
        Settings(),
        protocol,
        dataset_info={"name": "synthetic.json"},
    )


def test_report_files_exist_and_parse(tmp_path: Path, result: bt.BacktestResult) -> None:
    command = "moodstream backtest --dataset synthetic.json --out out"
    paths = report.write_report(result, tmp_path / "out", command)
    names = {p.name for p in paths}
    assert names == {
        "metrics.json",
        "tuning.json",
        "report.md",
        "metrics.png",
        "ndcg_over_time.png",
    }
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result.metrics_json()))
    tuning = json.loads((tmp_path / "out" / "tuning.json").read_text())
    assert tuning["selected"] == metrics["protocol"]["selected"]
    for png in ("metrics.png", "ndcg_over_time.png"):
        data = (tmp_path / "out" / png).read_bytes()
        assert data[:8] == PNG and len(data) > 5_000
    text = (tmp_path / "out" / "report.md").read_text()
    assert command in text
    assert "| variant | NDCG@10 | HR@10 | MRR@20 | coverage |" in text
    for name in result.variants:
        assert f"| {name} | {result.variants[name].metrics['ndcg@10']:.4f} |" in text
    assert "Selected rank weights" in text and "## What it means" in text


def test_pngs_are_the_same_bytes_for_the_same_run(
    tmp_path: Path, result: bt.BacktestResult
) -> None:
    report.write_report(result, tmp_path / "a", "c")
    report.write_report(result, tmp_path / "b", "c")
    for name in ("metrics.png", "ndcg_over_time.png", "metrics.json", "report.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_the_reading_follows_the_intervals(result: bt.BacktestResult) -> None:
    ci = result.variants["sentiment_aware"].ci["taste_only"]["ndcg@10"]
    lines = "\n".join(report.reading(result))
    if ci.low > 0:
        assert "**sentiment_aware beats taste_only**" in lines
    else:
        assert "**sentiment_aware does not beat taste_only**" in lines
    off = result.variants["sentiment_aware_no_sentiment"].ci["sentiment_aware"]["ndcg@10"]
    assert (
        f"(sentiment_aware_no_sentiment) NDCG@10 moves by {report._ci(off)} against "
        f"sentiment_aware, {report._verdict(off)}." in lines.replace("\n", " ")
    )
    assert report._verdict(bt.Interval(0.02, 0.01, 0.03)) == "better"
    assert report._verdict(bt.Interval(-0.02, -0.03, -0.01)) == "worse"
    assert report._verdict(bt.Interval(0.01, -0.01, 0.03)) == "not distinguishable"
