"""The worker on the real broker: valid events reach the agents, bad ones become dead letters with
their reason while the partition keeps flowing, duplicates are dropped, erasure removes state, and
a successor recovers the tables after SIGTERM and SIGKILL."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.contract.topics import ALL_KINDS
from stream.devtools.broker import free_port
from stream.devtools.demo import fetch_metrics
from stream.settings import Settings
from tests.integration.harness import (
    WorkerProcess,
    consume,
    create_topics,
    produce,
    run,
    worker_env,
)

pytestmark = pytest.mark.integration
NOW = int(time.time() * 1000)


def _metrics(port: int) -> dict[str, float]:
    return fetch_metrics(port)


@pytest.fixture
def worker(
    kafka_broker: Any, unique_name: str, tmp_path: Path
) -> Iterator[tuple[WorkerProcess, Settings, int]]:
    port = free_port()
    env = worker_env(kafka_broker.url, unique_name, tmp_path, web_port=port)
    settings = Settings(topic_prefix=f"{unique_name}.", app_id=f"{unique_name}-app")
    run(create_topics(kafka_broker.bootstrap, [settings.topic(k) for k in ALL_KINDS]))
    proc = WorkerProcess(env, tmp_path / "worker.log")
    proc.start()
    yield proc, settings, port
    proc.stop()


def review(event_id: str, user: str, item: str, text: str, ts: int, **extra: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "item_id": item, "text": text, "ts": ts, **extra}


def recs_for(records: list[tuple[bytes | None, Any]], user: str) -> list[dict[str, Any]]:
    return [v for k, v in records if v is not None and v["user_id"] == user]


def test_valid_invalid_duplicate_and_erased_events(kafka_broker: Any, worker: Any) -> None:
    proc, s, port = worker
    boot = kafka_broker.bootstrap
    good_review = review(
        "r1", "alice", "amp-0001", "Warm, loud and lovely. Best amp I owned.", NOW, rating=5
    )
    bad_reviews: list[bytes | dict[str, Any]] = [
        b"{not json",
        b"\xff\xfe\x00garbage",
        json.dumps(review("r2", "alice", "amp-0001", "x" * 9000, NOW)).encode(),
        json.dumps({"event_id": "r3", "user_id": "alice", "ts": NOW}).encode(),
        json.dumps(review("r4", "alice", "no-such-item", "fine", NOW)).encode(),
    ]
    run(produce(boot, s.topic("reviews"), [good_review, *bad_reviews], key="alice"))
    run(
        produce(
            boot,
            s.topic("chats"),
            [
                {
                    "event_id": "c1",
                    "user_id": "bob",
                    "text": "so happy with my new strings today",
                    "session_id": "s1",
                    "ts": NOW + 1,
                },
                json.dumps(
                    {"event_id": "c2", "user_id": "bob", "text": 5, "session_id": "s", "ts": 1}
                ).encode(),
            ],
            key="bob",
        )
    )
    click = {
        "event_id": "k1",
        "user_id": "carol",
        "item_id": "pedal-0001",
        "action": "purchase",
        "ts": NOW + 2,
    }
    run(
        produce(
            boot,
            s.topic("clicks"),
            [
                json.dumps({**click, "event_id": "k0", "action": "like"}).encode(),
                click,
                click,  # a redelivery: must not count twice
                {**click, "event_id": "k2", "action": "view", "dwell_ms": 4000, "ts": NOW + 3},
            ],
            key="carol",
        )
    )
    run(produce(boot, s.topic("erasure"), [b"[]"], key="dave"))

    dead = run(consume(boot, s.topic("deadletter"), min_count=8, timeout=60))
    kinds = sorted(v["error_kind"] for _, v in dead)
    assert kinds == sorted(
        [
            "malformed_json",
            "encoding",
            "oversize",
            "schema",
            "unknown_item",
            "schema",
            "unknown_action",
            "schema",
        ]
    ), kinds
    by_offset = {(v["source_topic"], v["offset"]): v for _, v in dead}
    assert by_offset[(s.topic("reviews"), 1)]["error_kind"] == "malformed_json"
    assert by_offset[(s.topic("reviews"), 2)]["raw_encoding"] == "base64"
    assert by_offset[(s.topic("reviews"), 3)]["error_kind"] == "oversize"
    assert by_offset[(s.topic("reviews"), 5)]["error_kind"] == "unknown_item"
    assert by_offset[(s.topic("clicks"), 0)]["error_kind"] == "unknown_action"
    assert all(v["error_message"] for _, v in dead)

    recs = run(
        consume(
            boot,
            s.topic("recommendations"),
            timeout=60,
            until=lambda r: {"alice", "bob", "carol"} <= {v["user_id"] for _, v in r},
        )
    )
    assert {"alice", "bob", "carol"} <= {v["user_id"] for _, v in recs}
    # The partition kept flowing: carol's last click, after a dead letter and a duplicate, counted.
    carol = recs_for(recs, "carol")
    assert any(r["trigger_event_id"] == "k2" for r in carol) or _wait_trigger(
        boot, s, "carol", "k2"
    )
    alice = recs_for(recs, "alice")[-1]
    assert alice["trigger_event_id"] == "r1"
    assert all(i["item_id"] != "amp-0001" for i in alice["items"])  # reviewed: never recommended

    metrics = _metrics(port)
    assert metrics["moodstream_duplicates_total"] == 1.0
    assert metrics['moodstream_events_total{kind="clicks"}'] == 2.0
    assert metrics['moodstream_events_total{kind="reviews"}'] == 1.0
    assert metrics['moodstream_events_total{kind="chats"}'] == 1.0

    # Erasure: the user's table entries become tombstones and no more recommendations go out.
    # First her record reaches the changelog (user records are written at the item flush, up
    # to --item-flush-ms after the fold; erased before that, no record and no tombstone exist).
    changelog = f"{s.app_id}-users-changelog"
    run(
        consume(boot, changelog, timeout=30, until=lambda r: any(k and b"alice" in k for k, _ in r))
    )
    run(produce(boot, s.topic("erasure"), [{"user_id": "alice", "ts": NOW + 10}], key="alice"))
    log = run(
        consume(
            boot,
            changelog,
            timeout=30,
            until=lambda r: any(k and b"alice" in k and v is None for k, v in r),
        )
    )
    alice_entries = [v for k, v in log if k and b"alice" in k]
    assert alice_entries[-1] is None  # state, seen items and dedup window: one record
    assert "ids" in alice_entries[0]  # the dedup window travels in the user's record
    before = len(recs_for(run(consume(boot, s.topic("recommendations"), timeout=3)), "alice"))
    run(
        produce(
            boot,
            s.topic("chats"),
            [
                {
                    "event_id": "c9",
                    "user_id": "bob",
                    "text": "ok",
                    "session_id": "s1",
                    "ts": NOW + 11,
                }
            ],
            key="bob",
        )
    )
    after = run(
        consume(
            boot,
            s.topic("recommendations"),
            timeout=30,
            until=lambda r: any(v["trigger_event_id"] == "c9" for _, v in r),
        )
    )
    assert len(recs_for(after, "alice")) == before
    # ... until alice comes back: then she starts from a fresh state.
    run(
        produce(
            boot,
            s.topic("clicks"),
            [{**click, "event_id": "k7", "user_id": "alice", "ts": NOW + 12}],
            key="alice",
        )
    )
    back = run(
        consume(
            boot,
            s.topic("recommendations"),
            timeout=30,
            until=lambda r: any(v["trigger_event_id"] == "k7" for _, v in r),
        )
    )
    fresh = next(v for _, v in back if v["trigger_event_id"] == "k7")
    assert fresh["emotion"]["weight"] < alice["emotion"]["weight"] + 1e-9
    assert proc.proc is not None and proc.proc.poll() is None


def _wait_trigger(boot: str, s: Settings, user: str, event_id: str) -> bool:
    recs = run(
        consume(
            boot,
            s.topic("recommendations"),
            timeout=30,
            until=lambda r: any(v["trigger_event_id"] == event_id for _, v in r),
        )
    )
    return any(v["trigger_event_id"] == event_id for _, v in recs)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_successor_recovers_tables_from_changelogs(
    kafka_broker: Any, worker: Any, sig: int
) -> None:
    proc, s, port = worker
    boot = kafka_broker.bootstrap
    events = [
        review(
            f"r{i}", "erin", f"amp-000{i}", "Fantastic tone, I love this amp.", NOW + i, rating=5
        )
        for i in range(1, 4)
    ]
    run(produce(boot, s.topic("reviews"), events, key="erin"))
    first = run(
        consume(
            boot,
            s.topic("recommendations"),
            timeout=60,
            until=lambda r: any(v["trigger_event_id"] == "r3" for _, v in r),
        )
    )
    state_before = [v for v in recs_for(first, "erin") if v["trigger_event_id"] == "r3"][-1]
    proc.stop(sig)
    proc.start()
    # One more event plus a redelivery of an old one: the successor must know erin (state
    # recovered) and must drop the duplicate (dedup table recovered too).
    run(
        produce(
            boot,
            s.topic("reviews"),
            [events[0], review("r4", "erin", "amp-0004", "Great amp again.", NOW + 4)],
            key="erin",
        )
    )
    after = run(
        consume(
            boot,
            s.topic("recommendations"),
            timeout=90,
            until=lambda r: any(v["trigger_event_id"] == "r4" for _, v in r),
        )
    )
    rec = [v for v in recs_for(after, "erin") if v["trigger_event_id"] == "r4"][-1]
    assert rec["emotion"]["weight"] > state_before["emotion"]["weight"]  # built on the old state
    shown = {i["item_id"] for i in rec["items"]}
    assert not shown & {"amp-0001", "amp-0002", "amp-0003", "amp-0004"}  # seen set recovered
    assert _metrics(port)["moodstream_duplicates_total"] >= 1.0  # the redelivered r1
