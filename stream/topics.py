"""Topic names and broker addresses shared by the worker and the CLI tools."""

from __future__ import annotations

from collections.abc import Iterable

from stream.errors import BrokerError, ConfigError
from stream.records import CONTRACTS
from stream.settings import Settings

INPUT_KINDS: tuple[str, ...] = ("reviews", "chats", "clicks", "erasure")
ALL_KINDS: tuple[str, ...] = (*INPUT_KINDS, "recommendations", "deadletter")


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092,kafka://h2:9092`` or ``h1:9092;h2:9092`` -> ``h1:9092,h2:9092``."""
    hosts = [h.strip() for h in broker_url.replace(";", ",").split(",") if h.strip()]
    if not hosts:
        raise ConfigError("broker URL is empty")
    return ",".join(h.removeprefix("kafka://").rstrip("/") for h in hosts)


def resolve(settings: Settings, topic: str) -> tuple[str, str]:
    """Accept a short kind (``reviews``) or a full topic name; return (kind, full name)."""
    if topic in CONTRACTS:
        return topic, settings.topic(topic)
    for kind in CONTRACTS:
        if topic == settings.topic(kind) or topic.endswith(f"moodstream.{kind}.v1"):
            return kind, topic
    known = ", ".join(sorted(CONTRACTS))
    raise ConfigError(f"unknown topic {topic!r}: use one of {known} or a moodstream.<kind>.v1 name")


_TOPIC_EXISTS = 36  # Kafka's TOPIC_ALREADY_EXISTS: another client created it first


async def ensure_topics(
    servers: str, names: Iterable[str], partitions: int, replication: int = 1
) -> list[str]:
    """Create the named topics that do not exist yet (inputs must share the worker's partition
    count: co-partitioning); returns the names created."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = sorted(set(names) - existing)
        if not wanted:
            return []
        response = await admin.create_topics([NewTopic(n, partitions, replication) for n in wanted])
        for entry in getattr(response, "topic_errors", []):
            name, code = entry[0], entry[1]
            if code not in (0, _TOPIC_EXISTS):
                detail = entry[2] if len(entry) > 2 and entry[2] else f"error code {code}"
                raise BrokerError(f"cannot create topic {name}: {detail}")
        return wanted
    finally:
        await admin.close()
