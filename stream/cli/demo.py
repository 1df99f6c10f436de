"""``moodstream demo``: the whole system on one machine, with a live terminal view."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import click

from stream.cli.options import (
    count_option,
    path_option,
    pop_settings,
    seed_option,
    settings_options,
    users_option,
)


@click.command()
@click.option("--duration", type=float, default=None, help="stop after S seconds (default: Ctrl-C)")
@click.option("--rate", type=float, default=40.0, show_default=True, help="events per second")
@users_option("simulated users")
@seed_option("simulation seed")
@click.option(
    "--bad-rate",
    type=float,
    default=0.01,
    show_default=True,
    help="share of corrupted values (shows the dead-letter path)",
)
@path_option("--summary-json", "write counts and latencies here at the end", dir_okay=False)
@click.option(
    "--external-broker",
    is_flag=True,
    help="use --broker as it is instead of starting a local Kafka",
)
@count_option(
    "--workers",
    1,
    "worker processes in one consumer group, each with its own web port, data dir and "
    "--instance-id; at most --partitions",
    env=True,
)
@settings_options
def demo(
    duration: float | None,
    rate: float,
    users: int,
    seed: int,
    bad_rate: float,
    summary_json: Path | None,
    external_broker: bool,
    workers: int,
    **kwargs: Any,
) -> None:
    """Start Kafka, the workers and the simulator; show events/s (per worker too), latency,
    moods and lists."""
    from stream.devtools.broker import KafkaBroker
    from stream.devtools.demo import DemoRun, run_demo
    from stream.devtools.demo_workers import worker_settings

    settings = pop_settings(kwargs)
    ports = demo_ports(settings.web_port, workers)
    worker_settings(settings, ports)  # refuse too few partitions before a broker starts
    work_dir = Path(settings.data_dir).parent / "demo"
    broker = None
    if not external_broker:
        broker = KafkaBroker(data_dir=None, echo=lambda line: click.echo(line, err=True))
        broker.start()
        settings = settings.replace(broker=broker.url)
        click.echo(f"kafka {broker.version} at {broker.bootstrap}", err=True)
    each = tuple(worker_settings(settings, ports))
    run = DemoRun(rate, duration, seed, users, bad_rate, work_dir, each)
    try:
        stats = asyncio.run(run_demo(settings, run))
    except KeyboardInterrupt:
        return
    finally:
        if broker is not None:
            broker.stop()
    summary = stats.summary()
    click.echo("\n" + json.dumps(summary, indent=2))
    if summary_json is not None:
        summary_json.write_text(json.dumps(summary, indent=2) + "\n", "utf-8")


def demo_ports(web_port: int, workers: int) -> list[int]:
    """The workers' web ports: from ``--web-port`` up when one is given, else free ones (the
    default 6066 may be taken by a worker already running here; the demo must poll its own)."""
    from stream.devtools.broker import free_port

    if web_port not in (0, 6066):
        return [web_port + n for n in range(workers)]
    ports: list[int] = []
    while len(ports) < workers:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports
