"""See and repair on a running worker: ``moodstream state USER`` (and ``/users/<id>``) shows
what the worker holds for a user; ``moodstream deadletters redrive`` re-sends dead letters to
their source topic, where the worker takes them again."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.devtools.broker import free_port
from stream.settings import Settings
from tests.integration.harness import WorkerProcess, consume, produce, run, worker_env

pytestmark = pytest.mark.integration
NOW = int(time.time() * 1000)


def moodstream(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def live(
    kafka_broker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, list[str]]]:
    name = f"sd_{secrets.token_hex(3)}"
    tmp = tmp_path_factory.mktemp(name)
    port = free_port()
    proc = WorkerProcess(worker_env(kafka_broker.url, name, tmp, web_port=port), tmp / "w.log")
    proc.start()
    settings = Settings(
        broker=kafka_broker.url, topic_prefix=f"{name}.", app_id=f"{name}-app", web_port=port
    )
    flags = ["--broker", kafka_broker.url, "--topic-prefix", f"{name}.", "--web-port", str(port)]
    yield settings, flags
    proc.stop()


def review(event_id: str, user: str, item: str, text: str, ts: int) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "item_id": item, "text": text, "ts": ts}


def test_state_shows_mood_taste_and_recent_items(
    kafka_broker: Any, live: tuple[Settings, list[str]], tmp_path: Path
) -> None:
    s, flags = live
    events = [
        review("s1", "sam", "amp-0001", "Warm, loud and lovely. Best amp I owned.", NOW),
        review("s2", "sam", "amp-0002", "Great tone, I love it.", NOW + 1),
    ]
    run(produce(kafka_broker.bootstrap, s.topic("reviews"), events))
    run(
        consume(
            kafka_broker.bootstrap,
            s.topic("recommendations"),
            until=lambda r: any(v["trigger_event_id"] == "s2" for _, v in r),
            timeout=60,
        )
    )
    shown = moodstream("state", "sam", "--json", *flags)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["user_id"] == "sam"
    assert view["emotion"]["valence"] > 0
    assert set(view["emotion"]["ekman"]) >= {"joy", "sadness"}
    assert view["taste"]["cold"] is False and view["taste"]["nearest_items"]
    assert view["recent_items"] == ["amp-0002", "amp-0001"]  # newest first
    assert view["recent_event_ids"] == 2
    plain = moodstream("state", "sam", *flags)
    assert plain.returncode == 0 and "recent  amp-0002, amp-0001" in plain.stdout
    # An erasure sent the README's way reaches the worker (its topic exists) and removes the state.
    erase = tmp_path / "erasure.jsonl"
    erase.write_text(json.dumps({"user_id": "sam", "ts": int(time.time() * 1000)}) + "\n")
    sent = moodstream("produce", "-t", "erasure", str(erase), *flags)
    assert sent.returncode == 0, sent.stderr
    deadline = time.monotonic() + 30
    while moodstream("state", "sam", *flags).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert moodstream("state", "sam", *flags).returncode == 2
    missing = moodstream("state", "nobody", *flags)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        f"moodstream: error: the worker at 127.0.0.1:{s.web_port} holds no state for user "
        "'nobody' (unknown, erased, or on a partition another worker owns)"
    ]


def test_redrive_resends_dead_letters_of_a_kind_to_their_source_topic(
    kafka_broker: Any, live: tuple[Settings, list[str]]
) -> None:
    s, flags = live
    boot = kafka_broker.bootstrap
    unknown = review("d1", "dee", "no-such-item", "fine", NOW)
    run(produce(boot, s.topic("reviews"), [unknown, b"{not json"], key="dee"))

    def letters() -> list[dict[str, Any]]:
        return [v for _, v in run(consume(boot, s.topic("deadletter"), timeout=5, min_count=99))]

    deadline = time.monotonic() + 60
    while len(letters()) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert sorted(d["error_kind"] for d in letters()) == ["malformed_json", "unknown_item"]

    dry = moodstream("deadletters", "redrive", "--kind", "unknown_item", "--dry-run", *flags)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "would re-send 1 of 2 dead letter(s) read",
        f"  {s.topic('reviews')}: 1 (unknown_item=1)",
    ]
    sent = moodstream("deadletters", "redrive", "--kind", "unknown_item", *flags)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.splitlines()[0] == "re-sent 1 of 2 dead letter(s) read"
    # The item is still unknown to this index, so the worker dead-letters the re-sent value
    # again: it went back to the source topic, keyed by its user, and was taken again.
    deadline = time.monotonic() + 60
    while len(letters()) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    again = [d for d in letters() if d["error_kind"] == "unknown_item"]
    assert len(again) == 2
    assert json.loads(again[1]["raw"]) == unknown
    assert again[1]["source_topic"] == s.topic("reviews")
    late = moodstream(
        "deadletters", "redrive", "--from", str(int(time.time() * 1000) + 60_000), *flags
    )
    assert late.stdout.splitlines() == ["re-sent 0 of 3 dead letter(s) read"]
