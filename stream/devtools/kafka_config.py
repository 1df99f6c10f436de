"""The broker's ``server.properties``: one KRaft node, combined broker and controller."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path

from stream.devtools.kafka_jars import NODE_ID


def server_properties(
    host: str,
    port: int,
    controller_port: int,
    log_dir: Path,
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The broker's ``server.properties``: one combined KRaft node tuned for a laptop or CI box.

    Replication factors are 1 (there is one node), there is no initial rebalance delay (tests and
    demos join groups constantly), and internal topics get few partitions so the first consumer
    group and the first transaction do not wait for 50 partitions to be created. Records are never
    deleted by age: its log lives only as long as the test session or demo that started it.
    """
    props = {
        "node.id": str(NODE_ID),
        "process.roles": "broker,controller",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        # Kafka 4.x dynamic quorum (KIP-853): formatted with `--standalone`.
        "controller.quorum.bootstrap.servers": f"{host}:{controller_port}",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",  # only the worker and `topics create` make topics
        "delete.topic.enable": "true",
        "log.retention.check.interval.ms": "10000",
        # No deletion by age: tests, demos and replays write records stamped with their event time,
        # often years old, and Kafka's 7-day default deleted them at the next retention check.
        "log.retention.ms": "-1",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
    }
    props.update(overrides or {})
    return props


def render_properties(props: Mapping[str, str]) -> str:
    lines = ["# written by stream/broker.py; edits are overwritten at the next start"]
    lines += [f"{key}={value}" for key, value in props.items()]
    return "\n".join(lines) + "\n"


def random_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (22 characters)."""
    while True:
        candidate = secrets.token_urlsafe(16)
        if not candidate.startswith("-"):  # a leading dash would read as a flag to StorageTool
            return candidate
