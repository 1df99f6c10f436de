"""``moodstream produce`` and ``moodstream tail`` against the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stream.contract.decoding import load_schema
from tests.integration.harness import consume, run

pytestmark = pytest.mark.integration


def moodstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from stream.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_produce_reports_bad_lines_and_loses_nothing_after_them(
    kafka_broker: Any, unique_name: str, tmp_path: Path
) -> None:
    good = load_schema("clicks")["examples"]
    lines = [
        json.dumps(good[0]),
        '{"event_id": "x", "user_id": "u", "action": "like"}',
        "not json at all",
        "",
        json.dumps(good[1]),
        json.dumps(good[2]),
    ]
    path = tmp_path / "clicks.jsonl"
    path.write_text("\n".join(lines) + "\n")
    prefix = f"{unique_name}."
    done = moodstream(
        "produce",
        "--topic",
        "clicks",
        str(path),
        "--broker",
        kafka_broker.url,
        "--topic-prefix",
        prefix,
    )
    assert done.returncode == 1
    assert f"{path}: line 2: schema" in done.stderr
    assert f"{path}: line 3: malformed_json" in done.stderr
    assert "Traceback" not in done.stderr
    records = run(
        consume(kafka_broker.bootstrap, f"{prefix}moodstream.clicks.v1", min_count=3, timeout=30)
    )
    assert [v for _, v in records] == good
    assert [k for k, _ in records] == [g["user_id"].encode() for g in good]

    tailed = moodstream(
        "tail",
        "--topic",
        "clicks",
        "--json",
        "--from-beginning",
        "--max",
        "3",
        "--broker",
        kafka_broker.url,
        "--topic-prefix",
        prefix,
    )
    assert tailed.returncode == 0, tailed.stderr
    assert [json.loads(line) for line in tailed.stdout.splitlines()] == good


def test_produce_errors_are_one_line(tmp_path: Path) -> None:
    missing = moodstream("produce", "--topic", "clicks", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("moodstream: error: cannot read")
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = moodstream("produce", "--topic", "likes", str(tmp_path / "nope.jsonl"))
    assert unknown.returncode == 2
    assert "unknown topic 'likes'" in unknown.stderr
