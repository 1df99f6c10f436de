"""KafkaBroker without a broker: the properties it writes before launching, a busy port."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stream.cli import main
from stream.devtools import broker as kb
from stream.devtools.broker import KafkaBroker
from stream.errors import BrokerError
from tests.unit.devtools.properties import parse_properties


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
    props = parse_properties((tmp_path / "work" / "server.properties").read_text())
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
