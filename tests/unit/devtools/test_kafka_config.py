"""server.properties for one combined KRaft node, overrides, cluster ids."""

from __future__ import annotations

import base64
from pathlib import Path

from stream.devtools import kafka_config as kc
from tests.unit.devtools.properties import parse_properties


def test_server_properties_make_one_combined_kraft_node(tmp_path: Path) -> None:
    props = parse_properties(
        kc.render_properties(kc.server_properties("127.0.0.1", 19092, 19093, tmp_path))
    )
    assert props["node.id"] == "1"
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert "controller.quorum.voters" not in props  # 4.x `format --standalone` wants bootstrap
    assert props["log.dirs"] == str(tmp_path)
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "default.replication.factor",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "false"
    assert int(props["log.retention.check.interval.ms"]) <= 60_000
    # records stamped years ago (data sets, replays) must outlive the retention check
    assert props["log.retention.ms"] == "-1"


def test_overrides_win(tmp_path: Path) -> None:
    props = kc.server_properties(
        "127.0.0.1", 1, 2, tmp_path, {"num.partitions": "8", "log.retention.ms": "1000"}
    )
    assert props["num.partitions"] == "8" and props["log.retention.ms"] == "1000"


def test_cluster_ids_are_kraft_uuids() -> None:
    for _ in range(200):
        cluster_id = kc.random_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
