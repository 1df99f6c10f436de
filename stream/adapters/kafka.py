"""The one place that makes Kafka clients: every producer, consumer and admin client of the
project's tools comes from here, built from the settings' broker address (and, in one place, any
client options a deployment needs)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stream.errors import BrokerError, ConfigError
from stream.settings import Settings

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient

_TOPIC_EXISTS = 36  # Kafka's TOPIC_ALREADY_EXISTS: another client created it first


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092,kafka://h2:9092`` or ``h1:9092;h2:9092`` -> ``h1:9092,h2:9092``."""
    hosts = [h.strip() for h in broker_url.replace(";", ",").split(",") if h.strip()]
    if not hosts:
        raise ConfigError("broker URL is empty")
    return ",".join(h.removeprefix("kafka://").rstrip("/") for h in hosts)


def _servers(target: Settings | str) -> str:
    return bootstrap_servers(target.broker if isinstance(target, Settings) else target)


def make_producer(target: Settings | str, **options: Any) -> AIOKafkaProducer:
    """A producer for the settings' broker (or a bootstrap string); not started."""
    from aiokafka import AIOKafkaProducer

    return AIOKafkaProducer(bootstrap_servers=_servers(target), **options)


def make_consumer(target: Settings | str, *topics: str, **options: Any) -> AIOKafkaConsumer:
    """A consumer for the settings' broker; not started. No group unless ``group_id`` is given."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(*topics, bootstrap_servers=_servers(target), **options)


def make_admin(target: Settings | str, **options: Any) -> AIOKafkaAdminClient:
    """An admin client for the settings' broker; not started."""
    from aiokafka.admin import AIOKafkaAdminClient

    return AIOKafkaAdminClient(bootstrap_servers=_servers(target), **options)


async def ensure_topics(
    target: Settings | str, names: Iterable[str], partitions: int, replication: int = 1
) -> list[str]:
    """Create the named topics that do not exist yet (inputs must share the worker's partition
    count: co-partitioning); returns the names created."""
    from aiokafka.admin import NewTopic

    admin = make_admin(target)
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
