"""KafkaBroker without a broker: tool checks, the jar cache, server.properties, the wire parser."""

from __future__ import annotations

import base64
import shutil
import socket
import struct
import threading
from pathlib import Path

import pytest

from stream.cli import main
from stream.devtools import broker as kb
from stream.devtools.broker import BrokerAddress, KafkaBroker
from stream.errors import BrokerError, MissingToolError


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only what a test puts into it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def _script(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_missing_java_is_one_line_saying_what_to_install(bare_path: Path) -> None:
    with pytest.raises(MissingToolError) as caught:
        KafkaBroker().start()
    message = str(caught.value)
    assert "\n" not in message
    assert "`java` not found" in message and "install" in message and "17" in message


def test_old_java_is_refused(bare_path: Path) -> None:
    _script(bare_path, "java", "echo 'openjdk version \"11.0.22\" 2024-01-16' >&2")
    with pytest.raises(MissingToolError, match=r"needs Java 17\+ but .* is Java 11"):
        KafkaBroker().start()


def test_java_8_version_string_reads_as_8(bare_path: Path) -> None:
    _script(bare_path, "java", "echo 'java version \"1.8.0_392\"' >&2")
    assert kb.java_major(str(bare_path / "java")) == 8


def test_missing_maven_is_reported_only_when_jars_must_be_fetched(
    bare_path: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(MissingToolError) as caught:
        kb.ensure_jars(kb.POM, cache)
    assert "\n" not in str(caught.value)
    assert "`mvn` not found" in str(caught.value) and "install" in str(caught.value)

    # A complete cache (marker matching the pom) needs no Maven at all.
    lib = cache / "lib"
    lib.mkdir(parents=True)
    (lib / ".complete").write_text(kb._jar_stamp(kb.POM))
    assert kb.ensure_jars(kb.POM, cache) == lib


def test_any_pom_edit_invalidates_the_jar_cache(bare_path: Path, tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    shutil.copy(kb.POM, pom)
    cache = tmp_path / "cache"
    (cache / "lib").mkdir(parents=True)
    (cache / "lib" / ".complete").write_text(kb._jar_stamp(pom))
    pom.write_text(pom.read_text().replace("<version>1</version>", "<version>2</version>", 1))
    with pytest.raises(MissingToolError, match="mvn"):
        kb.ensure_jars(pom, cache)


def test_pinned_version_is_kafka_4() -> None:
    major, minor, patch = kb.kafka_version().split(".")
    assert major == "4" and minor.isdigit() and patch.isdigit()


def test_a_pom_without_the_pin_is_an_error(tmp_path: Path) -> None:
    pom = tmp_path / "pom.xml"
    pom.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><properties/></project>')
    with pytest.raises(BrokerError, match=r"<kafka\.version>"):
        kb.kafka_version(pom)


def _parse(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_server_properties_make_one_combined_kraft_node(tmp_path: Path) -> None:
    props = _parse(kb.render_properties(kb.server_properties("127.0.0.1", 19092, 19093, tmp_path)))
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


def test_overrides_win(tmp_path: Path) -> None:
    props = kb.server_properties(
        "127.0.0.1", 1, 2, tmp_path, {"num.partitions": "8", "log.retention.ms": "1000"}
    )
    assert props["num.partitions"] == "8" and props["log.retention.ms"] == "1000"


def test_broker_writes_its_properties_before_launching(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start() up to the JVM: the file Kafka reads is the rendered one, ports filled in."""
    monkeypatch.setattr(kb, "check_java", lambda: "/usr/bin/java")
    monkeypatch.setattr(kb, "ensure_jars", lambda *args: tmp_path / "lib")

    def refuse(self: KafkaBroker, *args: object) -> None:
        raise BrokerError("stop here")

    monkeypatch.setattr(KafkaBroker, "_format", refuse)
    node = KafkaBroker(data_dir=tmp_path / "work", overrides={"num.partitions": "3"})
    with pytest.raises(BrokerError, match="stop here"):
        node.start()
    props = _parse((tmp_path / "work" / "server.properties").read_text())
    assert props["listeners"] == (
        f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
    )
    assert node.port != node.controller_port and node.port > 0
    assert props["log.dirs"] == str(tmp_path / "work" / "data")
    assert props["num.partitions"] == "3"
    assert node.url == f"kafka://127.0.0.1:{node.port}"


def test_a_busy_port_is_refused_by_the_cli_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as caught:
            main(["broker", "--port", str(port)])
    assert caught.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"127.0.0.1:{port} is already in use" in err


def test_cluster_ids_are_kraft_uuids() -> None:
    for _ in range(200):
        cluster_id = kb.random_cluster_id()
        assert len(cluster_id) == 22 and not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


@pytest.mark.parametrize(
    ("text", "bootstrap"),
    [
        ("127.0.0.1:9092", "127.0.0.1:9092"),
        ("kafka://kafka:9092", "kafka:9092"),
        ("kafka://a:1,kafka://b:2", "a:1"),
    ],
)
def test_broker_address_parse(text: str, bootstrap: str) -> None:
    address = BrokerAddress.parse(text)
    assert address.bootstrap == bootstrap
    assert address.url == f"kafka://{bootstrap}"


@pytest.mark.parametrize("text", ["", "localhost", "kafka://host:", "host:port"])
def test_broker_address_rejects_junk(text: str) -> None:
    with pytest.raises(BrokerError):
        BrokerAddress.parse(text)


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    return struct.pack(">h", len(value)) + value.encode()


def test_metadata_parser_reads_a_v4_response() -> None:
    """A canned Metadata v4 answer from a fake server: two brokers, one with a rack."""
    seen: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            (size,) = struct.unpack(">i", conn.recv(4))
            seen.append(conn.recv(size))
            body = struct.pack(">iii", 1, 0, 2)  # correlation id, throttle, 2 brokers
            body += struct.pack(">i", 1) + _string("127.0.0.1") + struct.pack(">i", 9092)
            body += _string(None)
            body += struct.pack(">i", 7) + _string("other") + struct.pack(">i", 9093)
            body += _string("rack-a")
            body += _string("cluster") + struct.pack(">ii", 1, 0)  # cluster, controller, topics
            conn.sendall(struct.pack(">i", len(body)) + body)

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        nodes = kb.metadata_brokers("127.0.0.1", server.getsockname()[1], timeout=5)
    finally:
        thread.join(5)
        server.close()
    assert nodes == [1, 7]
    api_key, api_version = struct.unpack_from(">hh", seen[0])
    assert (api_key, api_version) == (3, 4)
