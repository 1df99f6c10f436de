"""The README's order on a broker that has none of the topics: ``moodstream worker`` first, then
``moodstream produce``, gives a recommendation within seconds; the worker creates every topic it
reads or writes with its partition count, refuses in one line an input topic with another count,
and where it may not create topics refuses to start without them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from stream.adapters.kafka import topic_partitions
from stream.contract.topics import worker_topics
from stream.devtools.broker import free_port
from stream.devtools.demo import fetch_metrics
from stream.settings import Settings
from tests.integration.harness import WorkerProcess, consume, create_topics, run, worker_env

pytestmark = pytest.mark.integration


def moodstream(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def _settings(kafka_broker: Any, name: str, partitions: int = 2) -> Settings:
    return Settings(
        broker=kafka_broker.url,
        topic_prefix=f"{name}.",
        app_id=f"{name}-app",
        partitions=partitions,
    )


def _status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_worker_then_produce_on_a_new_broker_gives_a_recommendation(
    kafka_broker: Any, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_broker, unique_name)
    assert not {s.name for s in worker_topics(settings)} & set(run(topic_partitions(settings)))
    port = free_port()
    data_dir = tmp_path / "fresh-volume" / "moodstream" / "worker"  # no folder of it exists yet
    env = worker_env(kafka_broker.url, unique_name, tmp_path, web_port=port, data_dir=data_dir)
    proc = WorkerProcess(env, tmp_path / "w.log")
    proc.start()
    try:
        assert data_dir.is_dir()
        counts = run(topic_partitions(settings))
        for spec in worker_topics(settings):  # erasure and the internal ones included
            assert counts.get(spec.name) == spec.partitions, spec.name
        events = tmp_path / "reviews.jsonl"
        review = {
            "event_id": "readme-1",
            "user_id": "newcomer",
            "item_id": "amp-0001",
            "text": "Warm and loud, love it.",
            "rating": 5,
            "ts": int(time.time() * 1000),
        }
        events.write_text(json.dumps(review) + "\n")
        started = time.monotonic()
        sent = moodstream(
            "produce", "-t", "reviews", str(events),
            "--broker", kafka_broker.url, "--topic-prefix", f"{unique_name}.",
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        recs = run(
            consume(
                kafka_broker.bootstrap,
                settings.topic("recommendations"),
                until=lambda r: any(v["trigger_event_id"] == "readme-1" for _, v in r),
                timeout=30,
            )
        )
        assert [v["user_id"] for _, v in recs] == ["newcomer"]
        assert recs[0][1]["items"]
        assert time.monotonic() - started < 30
        # Faust's own table and router views are off: they would serve any user's state.
        assert _status(port, "/health") == 200
        assert _status(port, "/table/users/newcomer/") == 404
        assert _status(port, "/router/") == 404
        lag: dict[str, float] = {}
        deadline = time.monotonic() + 20
        while not lag and time.monotonic() < deadline:  # measured every 5 s
            lag = {k: v for k, v in fetch_metrics(port).items() if "consumer_lag" in k}
            time.sleep(0.5)
        assert any(settings.topic("reviews") in k for k in lag), lag
        assert all(v >= 0 for v in lag.values())
    finally:
        assert proc.stop() == 0
    assert "PartitionsMismatch" not in proc.log()


def test_an_input_topic_with_another_partition_count_is_refused_in_one_line(
    kafka_broker: Any, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_broker, unique_name)
    reviews = settings.topic("reviews")
    run(create_topics(kafka_broker.bootstrap, [reviews], partitions=1))
    env = {**worker_env(kafka_broker.url, unique_name, tmp_path)}
    done = moodstream("worker", env={**_os_env(), **env})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"moodstream: error: topic {reviews} has 1 partition(s) ")
    assert "needs 2 (--partitions)" in lines[0]
    assert "co-partitioning" in lines[0] and "--partitions 1" in lines[0]
    assert settings.topic("clicks") not in run(topic_partitions(settings))  # nothing half-made


def test_a_worker_that_may_not_create_topics_refuses_then_starts_after_topics_create(
    kafka_broker: Any, unique_name: str, tmp_path: Path
) -> None:
    settings = _settings(kafka_broker, unique_name)
    env = {**_os_env(), **worker_env(kafka_broker.url, unique_name, tmp_path)}
    env["MOODSTREAM_ALLOW_TOPIC_CREATION"] = "false"
    refused = moodstream("worker", env=env)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing topic(s)" in lines[0] and "topics create" in lines[0]
    assert (
        run(topic_partitions(settings)).keys().isdisjoint(s.name for s in worker_topics(settings))
    )

    made = moodstream("topics", "create", env=env)
    assert made.returncode == 0, made.stderr
    assert len(made.stdout.splitlines()) == len(worker_topics(settings))
    described = moodstream("topics", "describe", env=env)
    assert described.returncode == 0, described.stderr
    assert all(line.endswith(" ok") for line in described.stdout.splitlines())

    checked = worker_env(kafka_broker.url, unique_name, tmp_path)
    checked["MOODSTREAM_ALLOW_TOPIC_CREATION"] = "false"
    proc = WorkerProcess(checked, tmp_path / "w.log")
    proc.start()
    assert proc.stop() == 0


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)
