"""Addresses and sockets: ``BrokerAddress``, free ports, and a bare Metadata request that asks
a broker which nodes it knows (readiness without a Kafka client)."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from stream.errors import BrokerError


@dataclass(frozen=True)
class BrokerAddress:
    """Where clients reach a broker: ``bootstrap`` for aiokafka, ``url`` for Faust settings."""

    host: str
    port: int

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> BrokerAddress:
        """Accept ``host:port`` or ``kafka://host:port`` (the first of a comma list)."""
        first = text.strip().split(",")[0].removeprefix("kafka://").strip()
        host, sep, port = first.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise BrokerError(f"not a broker address (want host:port or kafka://...): {text!r}")
        return cls(host, int(port))


# --- tools and jars ---------------------------------------------------------------------------


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the JVM does: a port whose old connections linger in TIME_WAIT is free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


# --- the wire -------------------------------------------------------------------------------


def metadata_brokers(host: str, port: int, timeout: float = 2.0) -> list[int]:
    """Node ids listed by a Metadata v4 request (the oldest version Kafka 4.x still serves).

    A raw request keeps readiness checks synchronous and silent: no event loop, no client logging
    connection errors while the broker boots. The broker lists itself only once it has registered
    with its controller and its data plane accepts requests.
    """
    client_id = b"moodstream-ready"
    header = struct.pack(">hhih", 3, 4, 1, len(client_id)) + client_id
    body = struct.pack(">ib", 0, 0)  # no topics, do not auto-create
    request = header + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", _recv_exact(sock, 4))
        payload = _recv_exact(sock, size)
    # correlation id, throttle_time_ms, then the brokers array
    _correlation, _throttle, count = struct.unpack_from(">iii", payload, 0)
    offset, nodes = 12, []
    for _ in range(count):
        (node_id,) = struct.unpack_from(">i", payload, offset)
        offset += 4
        (host_len,) = struct.unpack_from(">h", payload, offset)
        offset += 2 + host_len + 4  # host bytes, port
        (rack_len,) = struct.unpack_from(">h", payload, offset)
        offset += 2 + max(rack_len, 0)
        nodes.append(node_id)
    return nodes


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
