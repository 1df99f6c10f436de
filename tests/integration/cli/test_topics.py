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
    made = moodstream(
        "topics", "create", "--broker", kafka_broker.url, "--topic-prefix", f"{unique_name}."
    )
    assert made.returncode == 0, made.stderr
    good = load_schema("clicks")["examples"]
    lines = [
        json.dumps(good[0]),
        '{"event_id": "x", "user_id": "u", "action": "like"}',
        json.dumps({**good[0], "event_id": "y" * 5000}),  # its report is cut, not 5 KB long
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
    assert f"{path}: line 4: malformed_json" in done.stderr
    assert f"{path}: line 3: schema" in done.stderr and "more characters)" in done.stderr
    assert all(len(line) < 400 for line in done.stderr.splitlines())
    assert "Traceback" not in done.stderr
    records = run(
        consume(kafka_broker.bootstrap, f"{prefix}moodstream.clicks.v1", min_count=3, timeout=30)
    )
    records.sort(key=lambda r: r[1]["event_id"])  # four partitions: no order across them
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
    tailed_values = [json.loads(line) for line in tailed.stdout.splitlines()]
    assert sorted(tailed_values, key=lambda v: v["event_id"]) == good


def test_produce_errors_are_one_line(tmp_path: Path) -> None:
    missing = moodstream("produce", "--topic", "clicks", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("moodstream: error: cannot read")
    assert len(missing.stderr.strip().splitlines()) == 1
    unknown = moodstream("produce", "--topic", "likes", str(tmp_path / "nope.jsonl"))
    assert unknown.returncode == 2
    assert "unknown topic 'likes'" in unknown.stderr


def test_produce_and_tail_never_create_a_topic(kafka_broker: Any, unique_name: str) -> None:
    """A missing topic is one line, not a 1-partition topic made by the client's metadata call."""
    from stream.adapters.kafka import topic_partitions
    from stream.settings import Settings

    flags = ["--broker", kafka_broker.url, "--topic-prefix", f"{unique_name}."]
    sent = moodstream("produce", "--topic", "reviews", "/dev/null", *flags)
    assert sent.returncode == 2
    assert sent.stderr.strip().splitlines() == [
        f"moodstream: error: topic {unique_name}.moodstream.reviews.v1 does not exist: start "
        "`moodstream worker` (it creates its topics) or run `moodstream topics create` with the "
        "worker's --partitions"
    ]
    tailed = moodstream("tail", "--topic", "recommendations", "--idle-timeout", "2", *flags)
    assert tailed.returncode == 0
    assert tailed.stdout == ""
    assert tailed.stderr.strip().splitlines() == [
        f"waiting for topic {unique_name}.moodstream.recommendations.v1 to be created "
        "(the worker creates it)"
    ]
    existing = run(topic_partitions(Settings(broker=kafka_broker.url)))
    assert not [name for name in existing if name.startswith(unique_name)]
