"""Broker addresses and the bare Metadata request, against a fake server."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from stream.devtools import kafka_net as kn
from stream.devtools.broker import BrokerAddress
from stream.errors import BrokerError


@pytest.mark.parametrize(
    ("text", "bootstrap"),
    [
        ("127.0.0.1:9092", "127.0.0.1:9092"),
        ("kafka://kafka:9092", "kafka:9092"),
        ("kafka://a:1,kafka://b:2", "a:1"),
    ],
)
def test_broker_addressparse_properties(text: str, bootstrap: str) -> None:
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
        nodes = kn.metadata_brokers("127.0.0.1", server.getsockname()[1], timeout=5)
    finally:
        thread.join(5)
        server.close()
    assert nodes == [1, 7]
    api_key, api_version = struct.unpack_from(">hh", seen[0])
    assert (api_key, api_version) == (3, 4)


def test_free_port_is_one_nothing_listens_on() -> None:
    port = kn.free_port()
    assert not kn.port_in_use("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
