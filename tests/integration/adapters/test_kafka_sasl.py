"""A real SASL/PLAIN listener: the security settings reach the clients, so ``moodstream topics``
works with the right password and says in one line that it cannot get in with a wrong one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from stream.devtools.broker import KafkaBroker, free_port
from stream.errors import MissingToolError

pytestmark = pytest.mark.integration
USER, PASSWORD = "moodstream", "s3cret-pw"
JAAS = (
    "org.apache.kafka.common.security.plain.PlainLoginModule required "
    f'username="{USER}" password="{PASSWORD}" user_{USER}="{PASSWORD}";'
)


@pytest.fixture(scope="module")
def sasl_port() -> Iterator[int]:
    """A broker of its own with a second listener, SASL_PLAINTEXT, beside the plain one."""
    port, controller, sasl = free_port(), free_port(), free_port()
    host = "127.0.0.1"
    broker = KafkaBroker(
        port=port,
        controller_port=controller,
        heap="384m",
        overrides={
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller},"
            f"SASL_PLAINTEXT://{host}:{sasl}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port},SASL_PLAINTEXT://{host}:{sasl}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,"
            "SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        },
    )
    try:
        broker.start()
    except MissingToolError as exc:
        broker.stop()
        pytest.skip(f"no real Kafka broker: {exc}")
    try:
        yield sasl
    finally:
        broker.stop()


def moodstream(*args: str, password: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MOODSTREAM_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "MOODSTREAM_SASL_MECHANISM": "PLAIN",
        "MOODSTREAM_SASL_USERNAME": USER,
        "MOODSTREAM_SASL_PASSWORD": password,
        "MOODSTREAM_CONNECT_TIMEOUT_S": "10",
    }
    return subprocess.run(
        [sys.executable, "-m", "stream.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_sasl_plain_clients_get_in_with_the_password_and_say_so_without(sasl_port: int) -> None:
    broker = f"kafka://127.0.0.1:{sasl_port}"
    made = moodstream("topics", "create", "--broker", broker, password=PASSWORD)
    assert made.returncode == 0, made.stderr
    described = moodstream("topics", "describe", "--broker", broker, password=PASSWORD)
    assert described.returncode == 0, described.stderr
    assert "moodstream.reviews.v1" in described.stdout
    refused = moodstream("topics", "describe", "--broker", broker, password="wrong")
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr
    assert lines[0].startswith(
        f"moodstream: error: cannot reach the Kafka broker at 127.0.0.1:{sasl_port}"
    )
