"""``moodstream backtest`` end to end on a tiny real ONNX model and a generated review file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stream.cli import cli, main
from stream.cli.backtest import command_line
from tests.fixtures.tiny_model import build_tiny_model

DAY_S = 86_400
TOPICS = {
    "guitar": ("strings", "sound", "product"),
    "movie": ("day", "very", "my"),
    "this": ("with", "of", "and"),
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", max_length=16)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Amazon 2014 JSON lines whose words the tiny model knows: users stick to a topic."""
    rng = np.random.default_rng(3)
    rows = []
    for u in range(24):
        topic = list(TOPICS)[u % 3]
        for d in sorted(rng.choice(200, size=6, replace=False).tolist()):
            item = str(rng.choice(TOPICS[topic]))
            stars = int(rng.choice([1, 5, 5, 4]))
            mood = "great" if stars >= 4 else "awful"
            rows.append(
                {
                    "reviewerID": f"U{u}",
                    "asin": f"{topic}-{item}",
                    "overall": float(stars),
                    "summary": mood,
                    "reviewText": f"{topic} {item} {mood}",
                    "unixReviewTime": 1_356_998_400 + d * DAY_S,
                }
            )
    path = tmp_path_factory.mktemp("data") / "reviews.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_backtest_writes_the_report(tiny_dir: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "backtest",
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--model-dir",
        str(tiny_dir),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--resamples",
        "50",
        "--warmup",
        "20d",
        "--depth",
        "20",
        "--no-progress",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    for name in ("sentiment_aware", "rating_oracle", "taste_only", "popularity"):
        assert name in result.output
    assert "tuned on" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["protocol"]["model_version"] == "0.0.0-test"
    assert metrics["protocol"]["depth"] == 20
    assert metrics["dataset"]["name"] == "reviews.json"
    text = (out / "report.md").read_text()
    assert f"--dataset {dataset} --out {out}" in text and "--depth 20" in text
    assert f"--model-dir {tiny_dir}" in text
    assert (out / "metrics.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "cache").rglob("*.npz"))  # scores cached for the next run


def test_variants_and_no_tune(tiny_dir: Path, dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = [
        "backtest",
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--model-dir",
        str(tiny_dir),
        "--cache-dir",
        str(tmp_path / "c"),
        "--variants",
        "seed_formula",
        "--no-tune",
        "--resamples",
        "20",
        "--warmup",
        "0",
        "--no-progress",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["variants"]) == ["seed_formula"]
    assert metrics["protocol"]["tuned"] is False
    assert not (out / "tuning.json").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dataset", "nowhere/reviews.json.gz"], "cannot read nowhere/reviews.json.gz"),
        (["--variants", "sentiment_aware,best"], "unknown variant(s) best"),
        (["--rebuild", "hourly"], "--rebuild 'hourly'"),
        (["--warmup", "soon"], "'soon' is neither epoch ms nor an ISO date"),
    ],
)
def test_bad_input_is_one_readable_line(
    extra: list[str],
    message: str,
    dataset: Path,
    tiny_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [
        "backtest",
        "--dataset",
        str(dataset),
        "--out",
        str(tmp_path / "o"),
        "--model-dir",
        str(tiny_dir),
        "--cache-dir",
        str(tmp_path / "c"),
        "--no-progress",
        *extra,
    ]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("moodstream: error: ") and message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_command_line_leaves_defaults_out() -> None:
    params = {
        "dataset": "d.zip",
        "out": "o",
        "seed": 0,
        "variants": None,
        "rebuild": "monthly",
        "warmup": "10%",
        "limit": 500,
        "tune": False,
        "tune_share": 0.6,
        "resamples": 1000,
        "depth": 100,
    }
    line = command_line(params, {"model_dir": "m dir"})
    assert (
        line
        == "moodstream backtest --dataset d.zip --out o --limit 500 --no-tune --model-dir 'm dir'"
    )
