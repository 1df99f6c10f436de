"""``moodstream replay`` against the real broker: ranges by offset and time, dead letters counted,
re-publishing for a shadow worker keeps keys and partitions."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from stream.adapters.index import FaissItemIndex, build_index
from stream.adapters.model_card import model_fingerprint
from stream.adapters.sentiment import OnnxSentimentModel
from stream.cli import cli
from stream.contract.topics import INPUT_KINDS
from stream.devtools.broker import BrokerAddress
from stream.offline.replay import Bound, RawRecord, Replay, publish, read_topics
from stream.settings import Settings
from stream.worker.processor import Processor
from tests.fixtures.tiny_model import build_tiny_model
from tests.integration.harness import create_topics, run

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000
ITEMS = {"g1": "guitar strings", "g2": "guitar sound", "m1": "movie day", "m2": "movie very"}
USERS = ("ann", "bob", "cat", "dan", "eve")


@pytest.fixture(scope="module")
def model_and_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("replay")
    model_dir = build_tiny_model(root / "model", max_length=16)
    model = OnnxSentimentModel.load(model_dir)
    emb = model.predict(list(ITEMS.values())).embedding
    build_index(list(ITEMS), emb, root / "index", model_fingerprint(model_dir))
    return model_dir, root / "index"


@pytest.fixture
def settings(
    kafka_broker: BrokerAddress, unique_name: str, model_and_index: tuple[Path, Path]
) -> Settings:
    model_dir, index_dir = model_and_index
    s = Settings(
        broker=kafka_broker.url,
        topic_prefix=f"{unique_name}.",
        partitions=2,
        model_dir=str(model_dir),
        index_dir=str(index_dir),
    )
    run(create_topics(kafka_broker.bootstrap, [s.topic(k) for k in INPUT_KINDS], partitions=2))
    return s


def events() -> list[tuple[str, str | None, bytes, int]]:
    """(kind, key, value, Kafka record time): 10 reviews, 2 clicks, 1 bad value."""
    out: list[tuple[str, str | None, bytes, int]] = []
    for n in range(10):
        user, item = USERS[n % len(USERS)], list(ITEMS)[n % len(ITEMS)]
        text = "great guitar" if n % 3 else "awful movie"
        value = {
            "event_id": f"r{n}",
            "user_id": user,
            "item_id": item,
            "text": text,
            "rating": 5 if n % 3 else 1,
            "ts": T0 + n * 1000,
        }
        out.append(("reviews", user, json.dumps(value).encode(), T0 + n * 1000))
    for n, user in enumerate(("ann", "bob")):
        value = {
            "event_id": f"c{n}",
            "user_id": user,
            "item_id": "m2",
            "action": "purchase",
            "ts": T0 + 20_000 + n,
        }
        out.append(("clicks", user, json.dumps(value).encode(), T0 + 20_000 + n))
    out.append(("reviews", "ann", b"{broken", T0 + 30_000))
    return out


async def produce_all(settings: Settings, rows: list[tuple[str, str | None, bytes, int]]) -> None:
    from stream.adapters.kafka import bootstrap_servers

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(settings.broker), acks="all")
    await producer.start()
    try:
        for kind, key, value, ts in rows:
            await producer.send_and_wait(
                settings.topic(kind), value, key=key.encode() if key else None, timestamp_ms=ts
            )
    finally:
        await producer.stop()


def replay(settings: Settings, records: list[RawRecord]) -> tuple[Any, list[dict[str, Any]]]:
    model = OnnxSentimentModel.from_settings(settings)
    recs: list[dict[str, Any]] = []
    proc = Processor(settings, model, FaissItemIndex.load(settings.index_dir))
    return Replay(proc, settings, on_recommendation=recs.append).run(records), recs


def test_replaying_topics_equals_replaying_the_same_values(settings: Settings) -> None:
    rows = events()
    run(produce_all(settings, rows))
    records = run(read_topics(settings, Bound(), Bound()))
    assert len(records) == len(rows)
    assert Counter(r.kind for r in records) == {"reviews": 11, "clicks": 2}
    from_topics, recs_topics = replay(settings, records)
    direct = [RawRecord(k, v, key.encode() if key else None) for k, key, v, _ in rows]
    from_list, recs_list = replay(settings, direct)
    assert dict(from_topics.events) == {"reviews": 10, "clicks": 2}
    assert dict(from_topics.dead_letters) == {"malformed_json": 1}
    assert from_topics.recommendations == 12
    assert recs_topics == recs_list  # the order read from partitions does not matter
    assert from_topics.to_dict() | {"seconds": 0} == from_list.to_dict() | {"seconds": 0}


def test_ranges_by_offset_and_by_record_time(settings: Settings) -> None:
    run(produce_all(settings, events()))
    by_offset = run(read_topics(settings, Bound(offset=1), Bound(offset=2)))
    assert by_offset and all(r.offset == 1 for r in by_offset)
    # one record at offset 1 in every non-empty partition of every topic
    assert len({(r.topic, r.partition) for r in by_offset}) == len(by_offset)
    by_time = run(read_topics(settings, Bound(ts=T0 + 3000), Bound(ts=T0 + 7000)))
    assert sorted(r.timestamp for r in by_time) == [T0 + n * 1000 for n in range(3, 7)]
    tail = run(read_topics(settings, Bound(ts=T0 + 20_000), Bound()))
    assert Counter(r.kind for r in tail) == {"clicks": 2, "reviews": 1}


def test_republish_keeps_keys_and_partitions(settings: Settings, unique_name: str) -> None:
    run(produce_all(settings, events()))
    records = run(read_topics(settings, Bound(), Bound()))
    shadow = f"{unique_name}-shadow."
    sent = run(publish(records, settings, shadow))
    assert sent == len(records)
    copied = run(read_topics(settings.replace(topic_prefix=shadow), Bound(), Bound()))

    def shape(rs: list[RawRecord]) -> Counter[tuple[str, bytes | None, bytes | None, int]]:
        return Counter((r.kind, r.key, r.value, r.partition) for r in rs)

    assert shape(copied) == shape(records)
    assert all(r.topic.startswith(shadow) for r in copied)


def test_cli_replays_a_topic_range(settings: Settings, tmp_path: Path) -> None:
    run(produce_all(settings, events()))
    out = tmp_path / "recs.jsonl"
    args = [
        "replay",
        "--broker",
        settings.broker,
        "--topic-prefix",
        settings.topic_prefix,
        "--model-dir",
        settings.model_dir,
        "--index-dir",
        settings.index_dir,
        "--to",
        str(T0 + 5000),
        "--out",
        str(out),
        "--json",
        "--no-progress",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["read"] == 5 and summary["events"] == {"reviews": 5}
    assert len(out.read_text().splitlines()) == summary["recommendations"] == 5
