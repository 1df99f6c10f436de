"""The session broker is real Kafka: the wire behaviours the tansu probe got wrong work here."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from stream.devtools.broker import BrokerAddress, KafkaBroker, metadata_brokers
from stream.errors import BrokerError
from tests.integration.conftest import MakeTopic


def test_answers_a_raw_metadata_request(kafka_broker: BrokerAddress) -> None:
    assert metadata_brokers(kafka_broker.host, kafka_broker.port) == [1]


async def test_aiokafka_sees_one_broker(kafka_broker: BrokerAddress) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    assert [(b["host"], b["port"]) for b in cluster["brokers"]] == [
        (kafka_broker.host, kafka_broker.port)
    ]
    assert kafka_broker.url == f"kafka://{kafka_broker.host}:{kafka_broker.port}"


async def test_round_trip_end_offsets_and_offsets_for_times(
    kafka_broker: BrokerAddress, unique_name: str, make_topic: MakeTopic
) -> None:
    topic = await make_topic("events", partitions=2)

    base = int(time.time() * 1000) - 60_000
    sent = [(f"user-{i % 3}".encode(), f'{{"n": {i}}}'.encode(), base + i * 1000) for i in range(9)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        # Queue everything before awaiting delivery: several records share a batch, the case
        # where the tansu probe reported wrong end offsets.
        futures = [await producer.send(topic, v, key=k, timestamp_ms=ts) for k, v, ts in sent]
        metas = [await future for future in futures]
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        group_id=f"{unique_name}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        got = []
        deadline = time.monotonic() + 30
        while len(got) < len(sent) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got += [(r.key, r.value, r.timestamp, r.partition, r.offset) for r in records]
        partitions = [TopicPartition(topic, p) for p in (0, 1)]
        ends = await consumer.end_offsets(partitions)
        # The 6th record (n=5) is the first at or after base + 4.5 s.
        found = await consumer.offsets_for_times({tp: base + 4500 for tp in partitions})
        late = await consumer.offsets_for_times({tp: base + 3_600_000 for tp in partitions})
    finally:
        await consumer.stop()

    assert sorted(got, key=lambda r: r[2]) == [
        (key, value, ts, meta.partition, meta.offset)
        for (key, value, ts), meta in zip(sent, metas, strict=True)
    ]
    per_partition = {p: sum(1 for meta in metas if meta.partition == p) for p in (0, 1)}
    assert {tp.partition: end for tp, end in ends.items()} == per_partition
    firsts = {tp.partition: (hit.offset, hit.timestamp) for tp, hit in found.items() if hit}
    expected: dict[int, tuple[int, int]] = {}
    for (_key, _value, ts), meta in zip(sent, metas, strict=True):
        if ts >= base + 4500 and meta.partition not in expected:
            expected[meta.partition] = (meta.offset, ts)
    assert firsts == expected
    assert all(hit is None for hit in late.values())


async def test_producing_to_a_missing_topic_does_not_create_it(
    kafka_broker: BrokerAddress, unique_name: str
) -> None:
    """auto.create.topics.enable=false: a stray client cannot make a 1-partition input topic."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_broker.bootstrap, request_timeout_ms=2000)
    await producer.start()
    try:
        with pytest.raises((KafkaTimeoutError, UnknownTopicOrPartitionError)):
            await producer.send_and_wait(f"{unique_name}.auto", b"x")
    finally:
        await producer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        assert f"{unique_name}.auto" not in await admin.list_topics()
    finally:
        await admin.close()


async def test_transactional_producer_commits(
    kafka_broker: BrokerAddress, unique_name: str, make_topic: MakeTopic
) -> None:
    topic, txn_records = await make_topic("txn"), 3
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap, transactional_id=f"{unique_name}-txn"
    )
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(txn_records):
                await producer.send(topic, f"{i}".encode(), key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_broker.bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < txn_records and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                values += [r.value for r in records if r.value is not None]
    finally:
        await consumer.stop()
    assert values == [b"0", b"1", b"2"]


def test_a_broker_that_cannot_start_says_why(tmp_path: Path) -> None:
    """A config Kafka rejects: the error names the exit and carries the broker's own words."""
    node = KafkaBroker(data_dir=tmp_path / "bad", overrides={"num.io.threads": "zero"})
    with pytest.raises(BrokerError) as caught:
        node.start()
    message = str(caught.value)
    assert "Kafka exited with code" in message or "formatting Kafka storage" in message
    assert "num.io.threads" in message
    assert not node.is_running()
