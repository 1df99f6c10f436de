"""``moodstream simulate --produce`` against the real broker: every value lands, keyed and paced."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from click.testing import CliRunner

from stream.cli.simulate import simulate
from stream.devtools.broker import BrokerAddress

KINDS = ("reviews", "chats", "clicks")


def produce(broker: BrokerAddress, prefix: str, out: Path, *args: str) -> str:
    result = CliRunner().invoke(
        simulate,
        [
            *["--produce", "--broker", broker.url, "--topic-prefix", prefix],
            *["--partitions", "3", "--events-out", str(out), *args],
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.stderr


async def consume(
    bootstrap: str, topics: dict[str, str], expected: int
) -> dict[str, list[tuple[bytes | None, bytes, int]]]:
    """(key, value, broker timestamp) per kind, once ``expected`` records arrived (or 60 s)."""
    got: dict[str, list[tuple[bytes | None, bytes, int]]] = {kind: [] for kind in topics}
    by_topic = {name: kind for kind, name in topics.items()}
    consumer = AIOKafkaConsumer(
        *topics.values(), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while sum(map(len, got.values())) < expected:
            assert asyncio.get_running_loop().time() < deadline, {k: len(v) for k, v in got.items()}
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                got[by_topic[tp.topic]] += [(r.key, r.value or b"", r.timestamp) for r in records]
    finally:
        await consumer.stop()
    return got


async def partition_counts(bootstrap: str, names: list[str]) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    return [len(topic["partitions"]) for topic in described]


def test_every_value_reaches_its_topic_keyed_by_user(
    kafka_broker: BrokerAddress, unique_name: str, tmp_path: Path
) -> None:
    prefix = f"{unique_name}."
    summary = produce(
        kafka_broker,
        prefix,
        tmp_path,
        "--seed",
        "2",
        "--users",
        "20",
        "--items",
        "40",
        "--events",
        "300",
        "--rate",
        "0",
        "--bad-rate",
        "0.05",
    )
    written = {k: (tmp_path / f"{k}.jsonl").read_bytes().splitlines() for k in KINDS}
    total = sum(map(len, written.values()))
    assert total > 300  # bad values ride along
    assert f"produced {total} values" in summary

    topics = {kind: f"{prefix}moodstream.{kind}.v1" for kind in KINDS}
    got = asyncio.run(consume(kafka_broker.bootstrap, topics, total))
    assert asyncio.run(partition_counts(kafka_broker.bootstrap, list(topics.values()))) == [3] * 3
    for kind in KINDS:
        assert sorted(value for _, value, _ in got[kind]) == sorted(written[kind])
        for key, value, _ in got[kind]:
            try:
                user = json.loads(value)["user_id"]
            except (ValueError, KeyError):
                continue  # a deliberately bad value
            assert key == user.encode()


def test_produce_is_paced_to_the_rate(
    kafka_broker: BrokerAddress, unique_name: str, tmp_path: Path
) -> None:
    prefix = f"{unique_name}."
    produce(kafka_broker, prefix, tmp_path, "--events", "80", "--rate", "100")
    topics = {kind: f"{prefix}moodstream.{kind}.v1" for kind in KINDS}
    got = asyncio.run(consume(kafka_broker.bootstrap, topics, 80))
    stamps = sorted(ts for records in got.values() for _, _, ts in records)
    values = [json.loads(v) for records in got.values() for _, v, _ in records]
    simulated_ms = max(v["ts"] for v in values) - min(v["ts"] for v in values)
    assert simulated_ms > 400
    assert stamps[-1] - stamps[0] >= 0.8 * simulated_ms
    # With --produce the simulated clock starts now, so event time is close to the wall clock.
    assert abs(min(v["ts"] for v in values) - stamps[0]) < 60_000
