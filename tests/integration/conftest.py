"""Integration fixtures on top of the session's real broker (``kafka_broker``, root conftest).

Every test here is marked ``integration`` by the root conftest; name topics and groups after the
``unique_name`` fixture so tests never see each other's records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.devtools.broker import BrokerAddress

MakeTopic = Callable[..., Awaitable[str]]


@pytest.fixture
def make_topic(kafka_broker: BrokerAddress, unique_name: str) -> MakeTopic:
    """``await make_topic("events", partitions=2)`` creates ``<unique_name>.events``; its name."""

    async def create(suffix: str, partitions: int = 1, **configs: str) -> str:
        name = f"{unique_name}.{suffix}"
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
        await admin.start()
        try:
            topic = NewTopic(name, partitions, 1, topic_configs=configs or None)
            await admin.create_topics([topic])
        finally:
            await admin.close()
        return name

    return create
