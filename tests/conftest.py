"""Fixtures every test directory may use; directory-specific fixtures live in their own conftest.

``kafka_broker`` is one real Apache Kafka node per test session, started only when a test first
asks for it (the unit tests never pay for it). Point the tests at a broker you already run with
``MOODSTREAM_TEST_BROKER=127.0.0.1:9092`` (or ``kafka://host:port``): nothing is started then.
Where Java or Maven is missing the integration tests skip with what to install, except under CI
(``CI`` set), where that is a failure.
"""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.devtools.broker import BrokerAddress, KafkaBroker
from stream.errors import MissingToolError

INTEGRATION_DIR = Path(__file__).parent / "integration"
_started: list[KafkaBroker] = []
_names = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration talks to the real broker: select with -m integration."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[BrokerAddress]:
    """The session's broker: ``.bootstrap`` ("127.0.0.1:port") for aiokafka, ``.url`` for Faust."""
    external = os.environ.get("MOODSTREAM_TEST_BROKER")
    if external:
        yield BrokerAddress.parse(external)
        return
    broker = KafkaBroker()
    try:
        broker.start()
    except MissingToolError as exc:
        broker.stop()
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no real Kafka broker: {exc}")
    _started.append(broker)
    try:
        yield broker.address
    finally:
        broker.stop()


@pytest.fixture
def unique_name() -> str:
    """A fresh topic prefix / app id per test (``t<n>_<hex>``), valid in topic and group names."""
    return f"t{next(_names)}_{secrets.token_hex(3)}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for broker in _started:
        terminalreporter.write_line(
            f"kafka broker: Apache Kafka {broker.version} on {broker.host}:{broker.port}, "
            f"started in {broker.start_seconds:.1f}s"
        )
