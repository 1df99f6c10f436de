"""``moodstream broker``: a real Apache Kafka node in the foreground, for demos and local runs."""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import click

from stream.cli.options import path_option
from stream.devtools.broker import KafkaBroker
from stream.errors import BrokerError


class _Stop(Exception):
    """Raised from the SIGTERM handler so the broker is stopped on the way out."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _progress(line: str) -> None:
    click.echo(line, err=True)  # stdout carries only the address, for scripts


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=9092,
    show_default=True,
    help="client (PLAINTEXT) port on the host; 0 picks a free one",
)
@click.option(
    "--controller-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="KRaft controller port (internal; 0 picks a free one)",
)
@path_option(
    "--data-dir",
    "keep topics here across restarts (default: a temporary folder, deleted on exit)",
    file_okay=False,
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="address to listen on and advertise to clients",
)
@click.option("--heap", default="512m", show_default=True, help="JVM heap (-Xmx) of the broker")
def broker(**flags: Any) -> None:
    """Run a single-node Apache Kafka 4 broker (KRaft) until Ctrl-C.

    The first run fetches the Kafka jars with Maven into .kafka/lib (needs `java` 17+ and `mvn`).
    Prints the bootstrap address once the broker answers metadata requests; broker warnings go to
    stderr and the full log to <data dir>/logs/server.log.
    """
    # the flags are KafkaBroker's own parameters (port, controller_port, data_dir, host, heap)
    node = KafkaBroker(
        **flags,
        console=2,  # the JVM writes its WARN+ lines straight to our stderr
        echo=_progress,
    )
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        node.start()
        click.echo(node.url)
        click.echo(node.bootstrap)
        click.echo(f"export MOODSTREAM_BROKER={node.url}   # Ctrl-C stops the broker", err=True)
        code = node.wait()
        raise BrokerError(f"Kafka exited on its own with code {code}{node.log_excerpt()}")
    except (KeyboardInterrupt, _Stop):
        click.echo("stopping Kafka ...", err=True)
    finally:
        node.stop()
        signal.signal(signal.SIGTERM, previous)
