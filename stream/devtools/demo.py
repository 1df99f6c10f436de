"""The live demo: a real broker, real worker processes, the simulator, and a terminal view.

Everything shown is read back from Kafka and from each worker's /metrics endpoint: the view
displays what the system did, nothing is computed on the side.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from stream.adapters.kafka import ensure_topics, make_consumer, make_producer
from stream.contract.topics import ALL_KINDS
from stream.devtools.demo_workers import DemoWorker, launch, stop_workers, worker_name
from stream.errors import BrokerError
from stream.settings import Settings
from stream.sim.simulate import SimConfig, Simulation

WINDOW = 2000  # latencies kept for the percentiles


@dataclass(frozen=True)
class DemoRun:
    """What one demo simulates and for how long: the command's flags, carried as one value
    from the command to the simulator so the list is written once."""

    rate: float  # events per second, paced in real time
    duration: float | None  # seconds; None: until Ctrl-C
    seed: int
    users: int
    bad_rate: float
    work_dir: Path
    workers: tuple[Settings, ...] = ()  # each worker's settings; () = one, as the demo's own

    def sim_config(self, start_ms: int) -> SimConfig:
        """An endless stream starting now, its ids unique to this start (a rerun is not a dup)."""
        return SimConfig(
            seed=self.seed,
            n_users=self.users,
            n_events=None,
            rate=self.rate,
            start_ms=start_ms,
            bad_rate=self.bad_rate,
            id_prefix=f"demo{start_ms}-",
        )


def rate(samples: deque[tuple[float, float]]) -> float:
    """Per second over the samples kept, from (monotonic time, counter) pairs; 0 until two."""
    if len(samples) < 2:
        return 0.0
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return max(n1 - n0, 0.0) / (t1 - t0) if t1 > t0 else 0.0


@dataclass
class WorkerView:
    """One worker as its /metrics shows it: events folded (all kinds), their rate, board size."""

    name: str
    port: int
    events: float = 0.0
    board_items: float = 0.0
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=20))

    def observe(self, metrics: dict[str, float], now: float) -> None:
        self.events = sum(v for k, v in metrics.items() if k.startswith("moodstream_events_total{"))
        self.board_items = metrics.get("moodstream_board_items", self.board_items)
        self.samples.append((now, self.events))

    def events_per_s(self) -> float:
        return rate(self.samples)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "events": self.events,
            "events_per_s": round(self.events_per_s(), 1),
            "board_items": self.board_items,
        }


@dataclass
class DemoStats:
    """Counts and latencies the view and the summary JSON show."""

    started: float = field(default_factory=time.monotonic)
    produced: Counter[str] = field(default_factory=Counter)
    bad_produced: int = 0
    recommendations: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: list[WorkerView] = field(default_factory=list)
    provider: str = "?"
    model: str = "?"
    index: str = "?"

    def observe_recommendation(self, value: dict[str, Any]) -> None:
        self.recommendations += 1
        self.latencies.append(float(value["latency_ms"]))
        # Re-insert so the dict's order is the order of the latest recommendation per user: the
        # view shows its tail (a plain update would keep the users first seen at the end).
        self.latest.pop(value["user_id"], None)
        self.latest[value["user_id"]] = value

    def percentile(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(int(q * len(ordered)), len(ordered) - 1)]

    @property
    def worker_events(self) -> float:
        return sum(w.events for w in self.workers)

    def events_per_s(self) -> float:
        """The group's rate: each worker's own rate, summed (a worker's counter is its own)."""
        return sum(w.events_per_s() for w in self.workers)

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(time.monotonic() - self.started, 1),
            "produced": dict(self.produced),
            "bad_produced": self.bad_produced,
            "worker_events": self.worker_events,
            "recommendations": self.recommendations,
            "dead_letters": dict(self.dead),
            "latency_ms": {
                "p50": self.percentile(0.5),
                "p99": self.percentile(0.99),
                "samples": len(self.latencies),
            },
            "events_per_s": round(self.events_per_s(), 1),
            "workers": [w.summary() for w in self.workers],
            "provider": self.provider,
            "model_version": self.model,
            "index_version": self.index,
        }


def render(stats: DemoStats, users: int = 6) -> Group:
    head = Table.grid(padding=(0, 3))
    p50, p99 = stats.percentile(0.5), stats.percentile(0.99)
    head.add_row(
        f"[b]events/s[/b] {stats.events_per_s():.0f}",
        f"[b]latency[/b] p50 {_ms(p50)} p99 {_ms(p99)}",
        f"[b]provider[/b] {stats.provider}",
        f"[b]recommendations[/b] {stats.recommendations}",
        f"[b]dead letters[/b] {sum(stats.dead.values())} "
        + " ".join(f"{k}={v}" for k, v in sorted(stats.dead.items())),
    )
    table = Table(title="latest recommendations", expand=True)
    for col in ("user", "valence", "arousal", "mood", "top items (score, affect)"):
        table.add_column(col)
    recent = list(stats.latest.values())[-users:]
    for value in reversed(recent):
        emo = value["emotion"]
        items = ", ".join(
            f"{i['item_id']} ({i['score']:.2f}, {i['affect']:+.2f})" for i in value["items"][:4]
        )
        colour = "green" if emo["valence"] > 0.1 else "red" if emo["valence"] < -0.1 else "white"
        table.add_row(
            value["user_id"],
            f"[{colour}]{emo['valence']:+.2f}[/]",
            f"{emo['arousal']:.2f}",
            emo["dominant"],
            items,
        )
    footer = f"model {stats.model} · index {stats.index} · produced {sum(stats.produced.values())}"
    top = Group(head, worker_table(stats.workers)) if len(stats.workers) > 1 else head
    return Group(Panel(top, title="moodstream demo"), table, footer)


def worker_table(workers: list[WorkerView]) -> Table:
    """Per worker beside the totals: each folds only its own partitions' users, and each holds
    the whole item board (its board items match the others')."""
    table = Table("worker", "port", "events/s", "events", "board items", box=None, expand=False)
    for w in workers:
        table.add_row(
            w.name,
            str(w.port),
            f"{w.events_per_s():.0f}",
            f"{w.events:.0f}",
            f"{w.board_items:.0f}",
        )
    total = sum(w.events for w in workers)
    rate_all = sum(w.events_per_s() for w in workers)
    table.add_row("[b]all[/b]", "", f"[b]{rate_all:.0f}[/b]", f"[b]{total:.0f}[/b]", "")
    return table


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def fetch_metrics(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def fetch_health(port: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
    )
    return data


async def create_topics(settings: Settings) -> None:
    names = [settings.topic(k) for k in ALL_KINDS]
    await ensure_topics(settings, names, settings.partitions, settings.replication)


async def wait_ready(worker: DemoWorker, timeout: float = 180.0) -> dict[str, Any]:
    """The worker's /health once it answers; a worker that exits first says why, in one line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        failure = worker.failure()
        if failure is not None:
            raise BrokerError(failure)
        try:
            return fetch_health(worker.settings.web_port)
        except OSError:
            await asyncio.sleep(0.5)
    raise BrokerError(
        f"{worker_name(worker.settings)} did not answer /health within {timeout:.0f}s "
        f"(log {worker.log_path})"
    )


async def start_all(
    each: list[Settings], work_dir: Path
) -> tuple[list[DemoWorker], dict[str, Any]]:
    """Start the workers and wait until each answers /health; returns them and the first's
    health. The first starts alone: it builds the demo index the others then find cached."""
    alone = len(each) == 1
    workers = [launch(each[0], work_dir, alone=alone)]
    try:
        health = await wait_ready(workers[0])
        workers += [launch(s, work_dir, alone=alone) for s in each[1:]]
        for worker in workers[1:]:
            await wait_ready(worker)
    except BaseException:
        stop_workers(workers)
        raise
    return workers, health


async def produce_simulation(
    settings: Settings, stats: DemoStats, run: DemoRun, stop: asyncio.Event
) -> None:
    """Paced in real time: each value goes out when the wall clock reaches its event time."""
    sim = Simulation(run.sim_config(int(time.time() * 1000)))
    producer = make_producer(settings, linger_ms=5)
    await producer.start()
    try:
        for msg in sim.messages():
            if stop.is_set():
                break
            delay = msg.ts / 1000.0 - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(settings.topic(msg.kind), msg.value, key=msg.key)
            if msg.bad:
                stats.bad_produced += 1
            else:
                stats.produced[msg.kind] += 1
        await producer.flush()
    finally:
        await producer.stop()


async def consume_outputs(settings: Settings, stats: DemoStats, stop: asyncio.Event) -> None:
    recs, dead = settings.topic("recommendations"), settings.topic("deadletter")
    consumer = make_consumer(
        settings,
        recs,
        dead,
        auto_offset_reset="latest",
        group_id=None,
    )
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            for tp, messages in batch.items():
                for m in messages:
                    value = json.loads(m.value)
                    if tp.topic == recs:
                        stats.observe_recommendation(value)
                    else:
                        stats.dead[value["error_kind"]] += 1
    finally:
        await consumer.stop()


async def poll_metrics(stats: DemoStats, stop: asyncio.Event) -> None:
    """Every half second, each worker's /metrics into its row (a worker not answering keeps its
    last numbers)."""
    while not stop.is_set():
        for view in stats.workers:
            try:
                metrics = await asyncio.to_thread(fetch_metrics, view.port)
            except OSError:
                continue
            view.observe(metrics, time.monotonic())
        await asyncio.sleep(0.5)


async def run_demo(settings: Settings, run: DemoRun, *, live: bool = True) -> DemoStats:
    """Workers + simulator + view until ``run.duration`` passes or Ctrl-C; returns the stats.
    ``run.workers`` holds each worker's settings (see ``worker_settings``)."""
    await create_topics(settings)
    run.work_dir.mkdir(parents=True, exist_ok=True)
    workers, health = await start_all(list(run.workers) or [settings], run.work_dir)
    stats = DemoStats(workers=[WorkerView(w.name, w.settings.web_port) for w in workers])
    stop = asyncio.Event()
    try:
        stats.provider, stats.model, stats.index = (
            health["provider"],
            health["model"],
            health["index"],
        )
        stats.started = time.monotonic()
        tasks = [
            asyncio.create_task(consume_outputs(settings, stats, stop)),
            asyncio.create_task(poll_metrics(stats, stop)),
        ]
        await asyncio.sleep(1.0)  # let the output consumer join before events flow
        tasks.append(asyncio.create_task(produce_simulation(settings, stats, run, stop)))
        deadline = None if run.duration is None else time.monotonic() + run.duration
        with Live(
            render(stats), refresh_per_second=4, transient=not live, redirect_stderr=False
        ) as view:
            while deadline is None or time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                view.update(render(stats))
                failure = next((f for w in workers if (f := w.failure())), None)
                if failure is not None:
                    raise BrokerError(failure)
        await asyncio.sleep(1.5)  # let the last recommendations arrive
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        stop.set()
        stop_workers(workers)
    return stats
