"""``moodstream score`` on the tiny model: one output line per input line, same order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.cli.score import score
from stream.ports import EKMAN, EMOTIONS, SENTIMENTS
from tests.fixtures.tiny_model import build_tiny_model

MAX_LENGTH = 16
LINES = [
    "good great love",
    "",
    "bad awful hate",
    "the guitar strings",
    " ".join(["bad"] * 40),  # longer than the model's window
    "wonderful excellent amazing",
    "   ",
    "terrible horrible worst",
]
EXPECTED = ["positive", "neutral", "negative", None, "negative", "positive", "neutral", "negative"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", max_length=MAX_LENGTH)


@pytest.fixture
def input_file(tmp_path: Path) -> Path:
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(LINES) + "\n", encoding="utf-8")
    return path


def _run(args: list[str], stdin: str | None = None) -> list[str]:
    result = CliRunner().invoke(score, args, input=stdin, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_plain_output_keeps_line_order_and_count(
    tiny_dir: Path, input_file: Path, batch_size: int
) -> None:
    out = _run([str(input_file), "--model-dir", str(tiny_dir), "--batch-size", str(batch_size)])
    assert len(out) == len(LINES)
    for line, expected in zip(out, EXPECTED, strict=True):
        label, valence, emotions = line.split("\t")
        assert label in SENTIMENTS
        assert -1.0 <= float(valence) <= 1.0
        if expected is not None:
            assert label == expected, line
        names = [part.split("=")[0] for part in emotions.split(",") if part]
        assert set(names) <= set(EMOTIONS)


def test_json_output(tiny_dir: Path, input_file: Path) -> None:
    out = _run([str(input_file), "--json", "--model-dir", str(tiny_dir), "--batch-size", "2"])
    rows = [json.loads(line) for line in out]
    assert len(rows) == len(LINES)
    assert [r["label"] for r in rows][:3] == ["positive", "neutral", "negative"]
    for row in rows:
        assert set(row["sentiment"]) == set(SENTIMENTS)
        assert list(row["emotions"]) == list(EMOTIONS)
        assert list(row["ekman"]) == list(EKMAN)
        assert sum(row["ekman"].values()) == pytest.approx(1.0, abs=1e-3)
        assert row["valence"] == pytest.approx(
            row["sentiment"]["positive"] - row["sentiment"]["negative"], abs=1e-3
        )
        for name in row["emotion_labels"]:  # tiny card: joy/anger at 0.4, the rest at 0.3
            assert row["emotions"][name] >= (0.4 if name in ("joy", "anger") else 0.3) - 1e-4
    assert [r["truncated"] for r in rows] == [i == 4 for i in range(len(LINES))]
    assert rows[0]["emotion_labels"][0] == "joy"
    assert rows[2]["emotion_labels"][0] == "anger"
    empty = rows[1]
    assert empty["valence"] == 0.0
    assert max(empty["sentiment"].values()) <= 0.5  # low confidence
    assert empty["ekman"]["neutral"] == 1.0


def test_reads_stdin(tiny_dir: Path) -> None:
    out = _run(["-", "--model-dir", str(tiny_dir)], stdin="bad awful\n\ngood great\n")
    assert [line.split("\t")[0] for line in out] == ["negative", "neutral", "positive"]


def test_last_line_without_newline_and_crlf(tiny_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "crlf.txt"
    path.write_bytes(b"good\r\nbad\r\nlove")
    out = _run([str(path), "--model-dir", str(tiny_dir)])
    assert [line.split("\t")[0] for line in out] == ["positive", "negative", "positive"]


def test_missing_file_is_one_readable_line(
    tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(tmp_path / "nope.txt"), "--model-dir", str(tiny_dir)])
    assert exit_.value.code == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.strip().splitlines() == [
        f"moodstream: error: cannot read {tmp_path / 'nope.txt'}: No such file or directory"
    ]


def test_says_which_lines_were_cut_or_had_their_bytes_replaced(
    tiny_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.txt"
    long = " ".join(["bad"] * 40).encode()
    path.write_bytes(b"good great\n" + b"caf\xe9 awful\n" + long + b"\nlove\n")
    result = CliRunner().invoke(
        score, [str(path), "--json", "--model-dir", str(tiny_dir)], catch_exceptions=False
    )
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["replaced_bytes"] for r in rows] == [False, True, False, False]
    assert [r["truncated"] for r in rows] == [False, False, True, False]
    assert result.stderr.strip().splitlines() == [
        "score: 1 line(s) held bytes that are not UTF-8, replaced by U+FFFD before scoring: "
        "line(s) 2",
        f"score: 1 text(s) longer than the model's {MAX_LENGTH}-token window were cut and "
        "scored on their start: line(s) 3",
    ]
    clean = CliRunner().invoke(score, ["-", "--model-dir", str(tiny_dir)], input="good\n")
    assert clean.stderr == ""


def test_missing_model_is_one_readable_line(
    input_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(input_file), "--model-dir", str(tmp_path / "no-model")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"moodstream: error: model folder {tmp_path / 'no-model'} does not exist"]
