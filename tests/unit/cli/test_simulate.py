"""``moodstream simulate`` writes catalog, events and truth; bad input is one readable line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.cli import main
from stream.cli.simulate import simulate
from stream.contract.decoding import decode, validate_value
from stream.errors import DeadLetter


def run(*args: str) -> str:
    result = CliRunner().invoke(simulate, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stderr


def test_writes_catalog_events_and_truth(tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run(
        *["--seed", "4", "--users", "30", "--items", "80", "--events", "400"],
        *("--catalog-out", str(out / "catalog.jsonl"), "--events-out", str(out / "events")),
        *("--truth-out", str(out / "truth.json")),
    )
    assert "simulated 400 events" in summary
    catalog = [json.loads(line) for line in (out / "catalog.jsonl").read_text().splitlines()]
    assert len(catalog) == 80
    assert all(set(row) == {"item_id", "title", "text", "category", "tags"} for row in catalog)
    total = 0
    for kind in ("reviews", "chats", "clicks"):
        lines = (out / "events" / f"{kind}.jsonl").read_bytes().splitlines()
        assert lines, kind
        for line in lines:
            validate_value(kind, json.loads(line))
        total += len(lines)
    assert total == 400
    truth = json.loads((out / "truth.json").read_text())
    assert set(truth["item_category"]) == {row["item_id"] for row in catalog}
    assert len(truth["users"]) == 30
    assert truth["counts"]["clicks"] + truth["counts"]["chats"] + truth["counts"]["reviews"] == 400


def test_same_seed_same_files(tmp_path: Path) -> None:
    for name in ("a", "b"):
        out = tmp_path / name
        run(
            *["--seed", "9", "--events", "300", "--events-out"],
            str(out / "ev.jsonl"),
            "--truth-out",
            str(out / "truth.json"),
        )
    for file in ("ev.jsonl", "truth.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    run("--seed", "10", "--events", "300", "--events-out", str(tmp_path / "c" / "ev.jsonl"))
    assert (tmp_path / "a" / "ev.jsonl").read_bytes() != (tmp_path / "c" / "ev.jsonl").read_bytes()


def test_merged_file_has_one_envelope_per_event(tmp_path: Path) -> None:
    target = tmp_path / "events.jsonl"
    run("--events", "200", "--mix", "chats=1,reviews=1", "--events-out", str(target))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert len(lines) == 200
    assert {line["kind"] for line in lines} == {"chats", "reviews"}
    for line in lines:
        assert line["key"] == line["value"]["user_id"]
        validate_value(line["kind"], line["value"])
    ts = [line["value"]["ts"] for line in lines]
    assert ts == sorted(ts)


def test_stdout_by_default() -> None:
    result = CliRunner().invoke(simulate, ["--events", "5"], catch_exceptions=False)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 5
    assert all(json.loads(line)["kind"] in {"reviews", "chats", "clicks"} for line in lines)
    assert "simulated 5 events" in result.stderr


def test_bad_values_reach_the_topic_files(tmp_path: Path) -> None:
    summary = run("--events", "500", "--bad-rate", "0.1", "--events-out", str(tmp_path))
    good = bad = 0
    for kind in ("reviews", "chats", "clicks"):
        for raw in (tmp_path / f"{kind}.jsonl").read_bytes().splitlines():
            try:
                decode(kind, raw, max_value_bytes=65536, max_text_bytes=8192)
                good += 1
            except DeadLetter:
                bad += 1
    assert good == 500
    assert bad > 20
    assert f"and {bad} bad values" in summary


def test_duration_limits_simulated_time(tmp_path: Path) -> None:
    target = tmp_path / "ev.jsonl"
    run("--duration", "4", "--rate", "100", "--events-out", str(target))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert 300 <= len(lines) <= 500
    assert lines[-1]["value"]["ts"] - lines[0]["value"]["ts"] < 4000


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--mix", "clicks=0.5,likes=0.5"], "--mix kind 'likes'"),
        (["--mix", "clicks=lots"], "not a number"),
        (["--users", "0"], "users must be >= 1"),
        (["--bad-rate", "2"], "bad rate"),
        (["--rate", "-1"], "--rate"),
    ],
)
def test_bad_input_is_one_readable_line(
    args: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--events", "3", *args])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("moodstream: error:") and needle in lines[0]
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_unwritable_output_is_one_readable_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SystemExit):
        main(["simulate", "--events", "3", "--truth-out", str(blocker / "sub" / "truth.json")])
    err = capsys.readouterr().err.strip()
    assert err.startswith("moodstream: error: cannot write the ground truth") and "\n" not in err


def test_unreachable_broker_is_one_readable_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--produce", "--events", "3", "--broker", "kafka://127.0.0.1:1"])
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "moodstream: error: cannot reach the Kafka broker at"
    )
