"""docker-compose.yml (Docker cannot run here) must agree with what the project runs without it.

Same Kafka version as kafka/pom.xml, exactly the six topics `Settings.topic` names, workers that
reach the broker's advertised listener, and settings variables that exist.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import fields
from typing import Any

import pytest
import yaml

from stream.cli import COMMANDS
from stream.devtools.broker import kafka_version
from stream.settings import REPO_ROOT, Settings, env_name

COMPOSE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "docker" / "Dockerfile"
KINDS = ("reviews", "chats", "clicks", "recommendations", "deadletter", "erasure")
TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def test_is_a_well_formed_compose_file(compose: dict[str, Any]) -> None:
    assert {k for k in compose if not k.startswith("x-")} <= TOP_LEVEL
    services = compose["services"]
    declared_volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        build = service.get("build")
        if build:
            assert (REPO_ROOT / build["context"] / build["dockerfile"]).is_file(), name
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] in {
                "service_started",
                "service_healthy",
                "service_completed_successfully",
            }
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], dependency
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name} mounts undeclared volume {source}"
        for port in service.get("ports") or []:
            assert isinstance(port, str) and re.fullmatch(r"\d+:\d+", port), port
        for key in service.get("environment") or {}:
            assert re.fullmatch(r"[A-Z_][A-Z0-9_]*", key), key


def test_kafka_image_is_the_version_the_project_pins(services: dict[str, dict[str, Any]]) -> None:
    pinned = f"apache/kafka:{kafka_version()}"
    images = {
        s["image"] for s in services.values() if str(s.get("image", "")).startswith("apache/")
    }
    assert images == {pinned}
    assert services["kafka"]["image"] == pinned


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert str(env[key]) == "1", key
    cluster_id = env["CLUSTER_ID"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{21}[AQgw]", cluster_id), "not a 16-byte base64url UUID"


def test_topics_are_exactly_the_six_the_settings_name(
    services: dict[str, dict[str, Any]],
) -> None:
    expected = {Settings().topic(kind) for kind in KINDS}
    listed = set(services["topics"]["environment"]["TOPICS"].split())
    assert listed == expected
    all_text = COMPOSE.read_text()
    mentioned = set(re.findall(r"moodstream\.[a-z]+\.v\d+", all_text))
    assert mentioned == expected  # no other, stale or misspelt topic anywhere in the file
    script = services["topics"]["command"][0]
    assert "--create --if-not-exists" in script and "$$TOPICS" in script


def test_workers_reach_the_advertised_listener(services: dict[str, dict[str, Any]]) -> None:
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    hosts = {listener.split("://", 1)[1] for listener in advertised}
    for name in ("worker", "worker-gpu"):
        worker = services[name]
        assert worker["command"] == ["moodstream", "worker"]
        assert worker["command"][1] in COMMANDS
        broker = worker["environment"]["MOODSTREAM_BROKER"]
        assert broker == "kafka://kafka:9092"
        assert broker.removeprefix("kafka://") in hosts


def test_worker_variables_are_real_settings(services: dict[str, dict[str, Any]]) -> None:
    known = {env_name(f.name) for f in fields(Settings)}
    for name in ("worker", "worker-gpu"):
        unknown = set(services[name]["environment"]) - known
        assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


def test_gpu_worker_reserves_a_gpu_only_when_asked(services: dict[str, dict[str, Any]]) -> None:
    gpu = services["worker-gpu"]
    assert gpu["profiles"] == ["gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["build"]["args"]["EXTRAS"] == "gpu"
    assert "resources" not in services["worker"]["deploy"] and "profiles" not in services["worker"]


def test_workers_scale_out_in_one_consumer_group(services: dict[str, dict[str, Any]]) -> None:
    """``docker compose up`` starts several worker replicas: one environment for all of them,
    so nothing in it may be unique to one (a host port, a static-membership instance id), and
    no more replicas than the topics have partitions (a replica beyond that owns nothing)."""
    worker = services["worker"]
    replicas = worker["deploy"]["replicas"]
    assert isinstance(replicas, int) and replicas >= 2
    env = worker["environment"]
    assert "ports" not in worker and "container_name" not in worker
    assert "MOODSTREAM_INSTANCE_ID" not in env and "MOODSTREAM_APP_ID" not in env  # one group
    default_partitions = re.fullmatch(
        r"\$\{MOODSTREAM_PARTITIONS:-(\d+)\}", env["MOODSTREAM_PARTITIONS"]
    )
    assert default_partitions is not None
    assert replicas <= int(default_partitions.group(1))
    assert services["topics"]["environment"]["PARTITIONS"] == env["MOODSTREAM_PARTITIONS"]


def test_dockerfile_copies_what_exists_and_runs_the_worker() -> None:
    text = DOCKERFILE.read_text()
    for line in text.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            *sources, _dest = shlex.split(line)[1:]
            for source in sources:
                assert (REPO_ROOT / source).exists(), f"docker/Dockerfile copies missing {source}"
    assert 'CMD ["moodstream", "worker"]' in text
