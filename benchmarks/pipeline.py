"""Pipeline benchmark: what one ``moodstream worker`` sustains on this machine, end to end.

    .venv/bin/python benchmarks/pipeline.py [--quick] [--profile auto|always|never]
        [--blas-check auto|always|never] [--reviews sim|amazon] [--set batch_wait_ms=10 ...]
        [--worker-env OPENBLAS_NUM_THREADS=1 ...] [--only ceiling,mixed,clicks,latency,memory]

One run (about 8 minutes; ``--quick`` about 4) measures, with the int8 model on the CPU:

1. ``ceiling``: texts/s of the model alone (``OnnxSentimentModel.predict``, batches of 32 in
   arrival order, which ``predict`` sorts by length and cuts) on the review + chat texts of the
   mixed stream; also at the batch a worker actually passes (the texts among batch_events
   events, at most batch_size).
2. ``mixed``: N events (60% clicks, 25% chats, 15% reviews; simulator, demo catalog seed 0 / 500
   items) are produced to a real Kafka 4 broker first, then one real ``moodstream worker``
   subprocess starts; its ``/metrics`` are scraped every 0.2 s. Sustained rate = events folded
   between the 10% and 90% marks (or the phase's time cap) / time between them. Texts/s inside
   the pipeline vs the ceiling.
3. ``clicks``: the same for clicks only. Below the target, diagnostics follow: cProfile of a
   second worker on the same topics (switched on at the 5% mark for <= 30 s; wall clock of the
   event loop thread), and the ``Processor`` alone without Kafka or Faust, each step timed.
4. ``latency``: a fresh worker with ``recommend_interval_ms=0``; events paced at half the mixed
   rate with ``ts`` = wall clock at send; event-to-recommendation latency from the worker's
   ``latency_ms`` and from the benchmark's receive time (end to end).
5. ``memory``: in a child process, a simulated month of history for a sample of users is folded
   through ``Processor`` into dict tables (a stub model stands in for scoring: state size does not
   depend on score values); bytes per user of the serialized values, and the RSS growth of
   tables holding 100k users (sample states replicated, each user's values its own objects).

CPU used by other jobs on the machine is measured alongside (``others_cores``): figures taken
while other jobs run are not the machine's. Writes benchmarks/results/pipeline.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import pstats
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    CpuWindow,
    Worker,
    busy_processes,
    machine,
    machine_cpu_s,
    metric_sum,
    percentile,
    proc_cpu_s,
    proc_rss_mib,
    scrape,
    utc_now,
)
from stream.settings import Settings  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
WORK = ROOT / "build" / "bench-pipeline"
REVIEWS_ZIP = (
    ROOT.parent
    / "shared"
    / "data"
    / "reviews"
    / "amazon_musical_instruments_5core"
    / "Musical_instruments_reviews.csv.zip"
)
TARGETS = {
    "pipeline_vs_ceiling": 0.70,
    "clicks_events_per_s": 3000.0,
    "latency_p99_ms": 250.0,
    "state_bytes_beyond_taste": 2048.0,
}
WORKER_ENV: dict[str, str] = {}  # --worker-env: extra environment of every worker
PROGRESS = (
    "moodstream_events_total",
    "moodstream_dead_letters_total",
    "moodstream_duplicates_total",
)


@dataclass(frozen=True)
class Plan:
    mixed_events: int = 20_000
    click_events: int = 30_000
    users: int = 5_000
    ceiling_s: float = 20.0
    latency_s: float = 40.0
    latency_warmup_s: float = 5.0
    mem_users: int = 100_000
    mem_sample_users: int = 2_000
    mem_events_per_user: int = 20
    phase_cap_s: float = 75.0
    core_events: int = 5_000


FULL = Plan()
QUICK = Plan(
    mixed_events=3_000,
    click_events=5_000,
    users=1_000,
    ceiling_s=6.0,
    latency_s=12.0,
    latency_warmup_s=3.0,
    mem_users=20_000,
    mem_sample_users=1_000,
    phase_cap_s=40.0,
    core_events=2_000,
)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- events ------------------------------------------------------------------------------------


def amazon_reviews() -> list[str]:
    import csv
    import io
    import zipfile

    with zipfile.ZipFile(REVIEWS_ZIP) as z, z.open(z.namelist()[0]) as f:
        rows = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"))
        texts = [r["reviewText"].strip() for r in rows]
    return [t for t in texts if t and len(t.encode()) <= 8000]  # the worker's max_text_bytes


def make_events(
    n: int, users: int, mix: str, prefix: str, reviews: str, end_ms: int | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Simulated events on the demo catalog (seed 0, 500 items); ``ts`` shifted to end now."""
    from stream.sim.simulate import SimConfig, Simulation, parse_mix

    cfg = SimConfig(
        seed=0, n_users=users, n_items=500, n_events=n, mix=parse_mix(mix), id_prefix=prefix
    )
    events = list(Simulation(cfg).events())
    if reviews == "amazon":
        import random

        pool = amazon_reviews()
        rng = random.Random(7)
        for kind, value in events:
            if kind == "reviews":
                value["text"] = rng.choice(pool)
    if events:
        shift = (end_ms or int(time.time() * 1000)) - events[-1][1]["ts"]
        for _, value in events:
            value["ts"] += shift
    return events


def texts_of(events: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    return [v["text"] for k, v in events if k in ("reviews", "chats")]


# --- 1. inference ceiling ----------------------------------------------------------------------


def measure_ceiling(
    settings: Settings, texts: list[str], seconds: float, batch: int = 32
) -> dict[str, Any]:
    from stream.adapters.sentiment import OnnxSentimentModel

    model = OnnxSentimentModel.from_settings(settings)
    batches = [texts[i : i + batch] for i in range(0, len(texts) - batch + 1, batch)]
    for b in batches[:3]:
        model.predict(b)  # first shapes allocate
    rates: list[float] = []
    done = 0
    cpu = CpuWindow({"bench": os.getpid()}).start()
    began = time.perf_counter()
    i = 0
    while time.perf_counter() - began < seconds or len(rates) < 3:
        t = time.perf_counter()
        count = 0
        for _ in range(8):  # one slice = 8 batches
            b = batches[i % len(batches)]
            i += 1
            model.predict(b)
            count += len(b)
        rates.append(count / (time.perf_counter() - t))
        done += count
    elapsed = time.perf_counter() - began
    words = sorted(len(t.split()) for t in texts)
    return {
        "texts_per_s_median": round(statistics.median(rates), 1),
        "texts_per_s_mean": round(done / elapsed, 1),
        "slices": len(rates),
        "batch": batch,
        "texts": done,
        "distinct_texts": len(texts),
        "median_words": words[len(words) // 2],
        "model": {"version": model.version, "variant": model.variant, "provider": model.provider},
        "cpu": cpu.stop(),
    }


# --- Kafka helpers -----------------------------------------------------------------------------


async def _create_topics(bootstrap: str, settings: Settings) -> None:
    from stream.adapters.kafka import ensure_topics
    from stream.contract.topics import ALL_KINDS

    await ensure_topics(bootstrap, [settings.topic(k) for k in ALL_KINDS], settings.partitions)
    await asyncio.sleep(1.0)  # partition leaders elected: no NotLeader retries while producing


async def _produce(
    bootstrap: str, settings: Settings, events: Sequence[tuple[str, dict[str, Any]]]
) -> float:
    from aiokafka import AIOKafkaProducer

    from stream.sim.simulate import encode_value

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=262144
    )
    await producer.start()
    began = time.perf_counter()
    try:
        futures = []
        for kind, value in events:
            futures.append(
                await producer.send(
                    settings.topic(kind), encode_value(value), key=value["user_id"].encode()
                )
            )
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - began


def worker_settings(base: Settings, name: str, work: Path, **changes: Any) -> Settings:
    return base.replace(
        app_id=f"{name}-app",
        topic_prefix=f"{name}.",
        web_port=free_port(),
        data_dir=str(work / f"w-{name}"),
        **changes,
    )


def env_of(settings: Settings) -> dict[str, str]:
    from stream.settings import env_name

    return {env_name(f.name): str(getattr(settings, f.name)) for f in fields(Settings)}


# --- 2/3. sustained throughput -----------------------------------------------------------------

PROFILE_CODE = """
import cProfile, signal
_prof = cProfile.Profile()
def _on(*_):
    _prof.enable()
def _off(*_):
    _prof.disable()
    _prof.dump_stats({path!r})
signal.signal(signal.SIGRTMIN + 1, _on)
signal.signal(signal.SIGRTMIN + 2, _off)
from stream.cli import main
main()
"""


def drain(
    broker: Any,
    settings: Settings,
    expected: int,
    cap_s: float,
    label: str,
    profile_to: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Start a worker on pre-produced topics and follow its progress until all are folded."""
    code = (
        PROFILE_CODE.format(path=str(profile_to))
        if profile_to is not None
        else "from stream.cli import main; main()"
    )
    worker = Worker(
        env_of(settings) | WORKER_ENV | (extra_env or {}),
        WORK / "logs" / f"{label}.log",
        python_code=code,
    )
    ready_s = worker.start()
    pids = {"worker": worker.pid, "broker": broker.proc.pid, "bench": os.getpid()}
    samples: list[dict[str, Any]] = []
    began = time.perf_counter()
    last_progress = began
    profiling = None if profile_to is None else "off"
    profile_on = 0.0
    try:
        while True:
            try:
                m = scrape(settings.web_port)
            except OSError:
                m = {}
            now = time.perf_counter()
            total = sum(metric_sum(m, p) for p in PROGRESS)
            texts = sum(
                v
                for k, v in m.items()
                if k.startswith("moodstream_events_total") and ('"reviews"' in k or '"chats"' in k)
            )
            sample = {
                "t": now,
                "total": total,
                "texts": texts,
                "recs": m.get("moodstream_recommendations_total", 0.0),
                "batches": m.get("moodstream_batch_size_count", 0.0),
                "batch_sum": m.get("moodstream_batch_size_sum", 0.0),
                "score_wait_s": m.get("moodstream_score_wait_seconds_total", 0.0),
                "fold_s": m.get("moodstream_fold_seconds_total", 0.0),
                "predict_s": m.get("moodstream_inference_predict_seconds_sum", 0.0),
                "cpu": {k: proc_cpu_s(p) for k, p in pids.items()},
                "machine": machine_cpu_s()[0],
                "rss_mib": proc_rss_mib(worker.pid),
            }
            if samples and total > samples[-1]["total"]:
                last_progress = now
            samples.append(sample)
            if profiling == "off" and total >= 0.05 * expected:
                os.kill(worker.pid, signal.SIGRTMIN + 1)
                profiling, profile_on = "on", now
                log(f"{label}: profiler on at {total:.0f} events")
            if profiling == "on" and (total >= 0.85 * expected or now - profile_on > 30):
                os.kill(worker.pid, signal.SIGRTMIN + 2)
                profiling = "dumped"
                log(f"{label}: profiler off at {total:.0f} events")
                break  # the profile is what this run is for
            if total >= expected:
                break
            if now - began > cap_s or now - last_progress > 30:
                log(f"{label}: stopped at {total:.0f}/{expected} events (cap or stall)")
                break
            time.sleep(0.2)
        if profiling == "on":
            os.kill(worker.pid, signal.SIGRTMIN + 2)
        if profile_to is not None:
            for _ in range(50):
                if profile_to.exists():
                    break
                time.sleep(0.1)
    finally:
        worker.stop()
    out = summarize(samples, expected)
    out["ready_s"] = round(ready_s, 1)
    return out


def summarize(samples: list[dict[str, Any]], expected: int) -> dict[str, Any]:
    """Rates between the 10% and 90% marks (the steady part) and over the whole drain."""

    def first_at(frac: float) -> int | None:
        for i, s in enumerate(samples):
            if s["total"] >= frac * expected:
                return i
        return None

    i10 = first_at(0.10)
    i90 = first_at(0.90)
    complete = samples[-1]["total"] >= expected
    if i10 is None:
        return {"complete": False, "folded": samples[-1]["total"], "expected": expected}
    if i90 is None or i90 <= i10:
        i90 = len(samples) - 1
    a, b = samples[i10], samples[i90]
    dt = b["t"] - a["t"]
    rate = (b["total"] - a["total"]) / dt if dt > 0 else float("nan")
    texts_rate = (b["texts"] - a["texts"]) / dt if dt > 0 else float("nan")
    recs_rate = (b["recs"] - a["recs"]) / dt if dt > 0 else float("nan")
    windows = []  # ~1 s windows inside the steady part
    j = i10
    for k in range(i10 + 1, i90 + 1):
        if samples[k]["t"] - samples[j]["t"] >= 1.0:
            windows.append(
                (samples[k]["total"] - samples[j]["total"]) / (samples[k]["t"] - samples[j]["t"])
            )
            j = k
    first = next(i for i, s in enumerate(samples) if s["total"] > 0)
    f, z = samples[first], samples[-1]
    overall = (z["total"] - f["total"]) / (z["t"] - f["t"]) if z["t"] > f["t"] else float("nan")
    cpu = {f"{k}_cores": round((b["cpu"][k] - a["cpu"][k]) / dt, 2) for k in a["cpu"]}
    busy = (b["machine"] - a["machine"]) / dt
    cpu["machine_busy_cores"] = round(busy, 2)
    cpu["others_cores"] = round(
        max(0.0, busy - sum(v for k, v in cpu.items() if k != "machine_busy_cores")), 2
    )
    batches = b["batches"] - a["batches"]
    return {
        "complete": complete,
        "expected": expected,
        "folded": int(z["total"]),
        "events_per_s": round(rate, 1),
        "events_per_s_window_median": round(statistics.median(windows), 1) if windows else None,
        "events_per_s_overall": round(overall, 1),
        "texts_per_s": round(texts_rate, 1),
        "recommendations_per_s": round(recs_rate, 1),
        "mean_batch_events": round((b["batch_sum"] - a["batch_sum"]) / batches, 1)
        if batches
        else None,
        "steady_window_s": round(dt, 2),
        "drain_s": round(z["t"] - f["t"], 2),
        "worker_rss_mib": round(max(s["rss_mib"] for s in samples), 0),
        "cpu": cpu,
        # Shares of the steady window: the folding task waiting for scores (the model is the
        # bottleneck) or folding; the scoring thread inside predict().
        "time_share": {
            k: round((b[k] - a[k]) / dt, 2) if dt > 0 else None
            for k in ("score_wait_s", "fold_s", "predict_s")
        },
    }


def profile_report(path: Path, top: int = 25) -> dict[str, Any]:
    """Hot spots by own time, the project's functions by inclusive time, time per package."""
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    raw = stats.stats  # type: ignore[attr-defined]

    def where(key: tuple[str, int, str]) -> str:
        filename, line, func = key
        short = filename
        for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                break
        return f"{short}:{line}:{func}" if filename != "~" else func

    def package(filename: str) -> str:
        if filename == "~":
            return "builtins/C"
        if "/work/main/stream/" in filename:
            return "stream." + filename.split("/work/main/stream/", 1)[1].removesuffix(".py")
        if "site-packages/" in filename:
            return filename.split("site-packages/", 1)[1].split("/", 1)[0]
        if "lib/python3.11/" in filename:
            return "stdlib." + filename.split("lib/python3.11/", 1)[1].split("/", 1)[0]
        return filename

    by_own = sorted(raw.items(), key=lambda kv: -kv[1][2])[:top]
    own = [
        {
            "function": where(k),
            "own_share": round(v[2] / total, 4),
            "calls": v[1],
            "inclusive_share": round(v[3] / total, 4),
        }
        for k, v in by_own
    ]
    ours = sorted(
        ((k, v) for k, v in raw.items() if "/work/main/stream/" in k[0]), key=lambda kv: -kv[1][3]
    )[:top]
    inclusive = [
        {
            "function": where(k),
            "inclusive_share": round(v[3] / total, 4),
            "own_share": round(v[2] / total, 4),
            "calls": v[1],
        }
        for k, v in ours
    ]
    packages: Counter[str] = Counter()
    for k, v in raw.items():
        packages[package(k[0])] += v[2]
    per_package = [
        {"package": p, "own_share": round(t / total, 4)} for p, t in packages.most_common(15)
    ]
    return {
        "profiled_s": round(total, 2),
        "top_own": own,
        "stream_inclusive": inclusive,
        "packages": per_package,
    }


# --- 4. latency ----------------------------------------------------------------------------------


async def _paced(
    bootstrap: str,
    settings: Settings,
    events: list[tuple[str, dict[str, Any]]],
    rate: float,
    duration: float,
    warmup: float,
) -> dict[str, Any]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from stream.sim.simulate import encode_value

    consumer = AIOKafkaConsumer(
        settings.topic("recommendations"),
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await consumer.start()
    await producer.start()
    sent: dict[str, int] = {}
    kind_of: dict[str, str] = {}
    got: list[tuple[int, float, int | None, str]] = []  # receive ms, latency_ms, send ms, kind
    stop = asyncio.Event()

    async def collect() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            recv = int(time.time() * 1000)
            for msgs in batch.values():
                for m in msgs:
                    v = json.loads(m.value)
                    eid = v["trigger_event_id"]
                    got.append((recv, float(v["latency_ms"]), sent.get(eid), kind_of.get(eid, "?")))

    task = asyncio.create_task(collect())
    began = time.perf_counter()
    i = 0
    lag_max = 0
    while time.perf_counter() - began < duration and i < len(events):
        due = int((time.perf_counter() - began) * rate)
        lag_max = max(lag_max, due - i)
        while i < due and i < len(events):
            kind, value = events[i]
            ts = int(time.time() * 1000)
            value = {**value, "ts": ts}
            sent[value["event_id"]] = ts
            kind_of[value["event_id"]] = kind
            await producer.send(
                settings.topic(kind), encode_value(value), key=value["user_id"].encode()
            )
            i += 1
        await asyncio.sleep(0.004)
    produced_s = time.perf_counter() - began
    await producer.flush()
    await asyncio.sleep(3.0)  # the last recommendations
    stop.set()
    await task
    await producer.stop()
    await consumer.stop()
    first_ms = min(sent.values()) + int(warmup * 1000) if sent else 0
    kept = [(r, lat, s, k) for r, lat, s, k in got if s is not None and s >= first_ms]
    worker_lat = [lat for _, lat, _, _ in kept]
    e2e = [float(r - s) for r, _, s, _ in kept if s is not None]

    def dist(values: list[float]) -> dict[str, float]:
        return {
            "p50": percentile(values, 50),
            "p90": percentile(values, 90),
            "p99": percentile(values, 99),
            "max": max(values) if values else float("nan"),
        }

    return {
        "rate_target": round(rate, 1),
        "rate_achieved": round(i / produced_s, 1),
        "events_sent": i,
        "recommendations": len(got),
        "recommendations_measured": len(kept),
        "warmup_s": warmup,
        "worker_latency_ms": dist(worker_lat),
        "end_to_end_ms": dist(e2e),
        "worker_latency_ms_by_trigger": {
            kind: dist([lat for _, lat, _, k in kept if k == kind])
            | {"n": sum(1 for *_, k in kept if k == kind)}
            for kind in ("clicks", "chats", "reviews")
        },
        "producer_behind_max": lag_max,
    }


# --- 5. memory (child process) -----------------------------------------------------------------


class StubModel:
    """Random but valid scores: state layout and size do not depend on the values."""

    version = "stub"

    def __init__(self) -> None:
        import numpy as np

        self.rng = np.random.default_rng(0)

    def predict(self, texts: Sequence[str]) -> Any:
        import numpy as np

        from stream.ports import EMOTIONS, SENTIMENTS, Scores

        n = len(texts)
        return Scores(
            self.rng.dirichlet(np.ones(len(SENTIMENTS)), n).astype(np.float32),
            self.rng.random((n, len(EMOTIONS)), dtype=np.float32),
            np.zeros((n, 384), np.float32),
            np.zeros(n, np.bool_),
        )


def measure_core_clicks(
    index_dir: Path,
    events: list[tuple[str, dict[str, Any]]],
    settings: Settings,
    budget_s: float = 15.0,
) -> dict[str, Any]:
    """The worker's per-batch work for clicks without Kafka or Faust: decode, fold, item fold,
    one recommend_many over the triggers, over dict tables, in batches of ``batch_events``.
    Times each step."""
    from stream.adapters.index import FaissItemIndex
    from stream.contract.decoding import decode
    from stream.sim.simulate import encode_value
    from stream.worker.processor import Decoded, Processor, Request

    proc = Processor(settings, StubModel(), FaissItemIndex.load(index_dir))
    users: dict[str, Any] = {}
    items: dict[str, Any] = {}
    raw = [(k, encode_value(v)) for k, v in events]
    spent = Counter[str]()
    recs = 0
    clock = time.perf_counter
    began, cpu0 = clock(), time.thread_time()
    done = 0
    for start in range(0, len(raw), settings.batch_events):
        if clock() - began > budget_s:
            break
        now = int(time.time() * 1000)
        t0 = clock()
        batch = [
            Decoded(
                k,
                decode(
                    k,
                    r,
                    max_value_bytes=settings.max_value_bytes,
                    max_text_bytes=settings.max_text_bytes,
                ),
            )
            for k, r in raw[start : start + settings.batch_events]
        ]
        t1 = clock()
        out = proc.fold_batch(batch, proc.score(batch), users, now)  # stub model: no time
        t2 = clock()
        for _, value in out.item_events:
            proc.fold_item(value, items)
        t3 = clock()
        requests = [Request(u, e, ts, out.states.get(u)) for u, (e, ts) in out.triggers.items()]
        recs += sum(v is not None for v in proc.recommend_many(requests, users, now))
        t4 = clock()
        spent.update(
            {"decode": t1 - t0, "fold_batch": t2 - t1, "fold_item": t3 - t2, "recommend": t4 - t3}
        )
        done += len(batch)
    wall, cpu = clock() - began, time.thread_time() - cpu0
    total = sum(spent.values())
    return {
        "events": done,
        "events_per_s": round(done / wall, 1),
        "thread_cpu_share": round(cpu / wall, 2),
        "recommendations": recs,
        "us_per_event": {k: round(v / done * 1e6, 1) for k, v in spent.items()},
        "share": {k: round(v / total, 3) for k, v in spent.items()},
    }


def core_child(index_dir: Path, n: int, users: int, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--core-child", str(index_dir), str(n), str(users)]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **env},  # as `moodstream` sets it
    )
    if out.returncode != 0:
        raise RuntimeError(f"core child failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1])) | {"env": env}


def memory_child(index_dir: str, users: int, sample: int, per_user: int) -> dict[str, Any]:
    from stream.adapters.index import FaissItemIndex
    from stream.contract.decoding import decode
    from stream.sim.simulate import SimConfig, Simulation, encode_value, make_catalog
    from stream.worker.processor import Decoded, Processor

    settings = Settings()
    index = FaissItemIndex.load(index_dir)
    proc = Processor(settings, StubModel(), index)
    month_s = 30 * 86400
    cfg = SimConfig(
        seed=0,
        n_users=sample,
        n_items=500,
        n_events=sample * per_user,
        rate=sample * per_user / month_s,
        id_prefix="mem-",
    )
    users_t: dict[str, Any] = {}
    batch: list[Decoded] = []
    began = time.perf_counter()
    n_events = 0

    def flush() -> None:
        scores = proc.score(batch)
        proc.fold_batch(batch, scores, users_t, 0)
        batch.clear()

    for kind, value in Simulation(cfg).events():
        record = decode(kind, encode_value(value), max_value_bytes=65536, max_text_bytes=8192)
        batch.append(Decoded(kind, record))
        n_events += 1
        if len(batch) == 32:
            flush()
    if batch:
        flush()
    fold_s = time.perf_counter() - began

    # A saturated user: 200 purchases of distinct items within an hour fill both windows.
    items = [it.item_id for it in make_catalog(0, 500)]
    now = int(time.time() * 1000)
    heavy: list[Decoded] = []
    for k in range(200):
        value = {
            "event_id": f"heavy-{k}",
            "user_id": "heavy",
            "item_id": items[k],
            "action": "purchase",
            "ts": now + k * 1000,
        }
        heavy.append(
            Decoded(
                "clicks",
                decode("clicks", encode_value(value), max_value_bytes=65536, max_text_bytes=8192),
            )
        )
    proc.fold_batch(heavy, None, users_t, 0)

    def size(value: Any) -> int:
        return len(json.dumps(value, separators=(",", ":")))

    def sizes(user: str) -> dict[str, int]:
        """Compact-JSON bytes of one user's table entries, split by what they hold."""
        u = users_t[user]
        vec = size(u["taste"]["vec"]) + len('"vec":')
        parts = {
            "taste_vector": vec,
            "taste_scalars": size(u["taste"]) - vec,
            "emotion": size(u["emotion"]),
            "seen_items": size(u["seen"]),
            "dedup_window": size(u["ids"]),
            "users_other": size(u)
            - size(u["taste"])
            - size(u["emotion"])
            - size(u["seen"])
            - size(u["ids"]),
            "keys": size(user),
        }
        parts["beyond_taste"] = sum(parts.values()) - vec
        return parts

    sampled = [sizes(u) for u in users_t if u != "heavy"]
    rest = sorted(p["beyond_taste"] for p in sampled)
    vecs = sorted(p["taste_vector"] for p in sampled)
    median_parts = {k: percentile([p[k] for p in sampled], 50) for k in sampled[0]}
    heavy_sizes = sizes("heavy")

    # RSS of tables holding `users` users, values deserialized like a changelog recovery.
    compact = (",", ":")
    dumped = [json.dumps(users_t[u], separators=compact) for u in users_t if u != "heavy"]
    gc.collect()
    rss0 = proc_rss_mib(os.getpid())
    big_users: dict[str, Any] = {}
    serialized = 0
    for i in range(users):
        uv = dumped[i % len(dumped)]
        key = f"user-{i:07d}"
        big_users[key] = json.loads(uv)
        serialized += len(uv) + len(key) + 2
    gc.collect()
    rss1 = proc_rss_mib(os.getpid())
    return {
        "sample_users": len(sampled),
        "history": f"{n_events} simulated events over 30 days ({per_user}/user on average, "
        "Zipf-skewed activity)",
        "history_events_per_s": round(n_events / fold_s, 0),  # simulate+decode+fold
        "taste_vector_bytes": int(statistics.median(vecs)) if vecs else 0,
        "beyond_taste_bytes": {
            "median": percentile(rest, 50),
            "p90": percentile(rest, 90),
            "max": max(rest) if rest else 0,
            "mean": round(statistics.fmean(rest), 1) if rest else 0,
        },
        "median_parts_bytes": median_parts,
        "saturated_user": {
            "taste_vector_bytes": heavy_sizes["taste_vector"],
            "beyond_taste_bytes": heavy_sizes["beyond_taste"],
            "parts_bytes": heavy_sizes,
            "how": "200 purchases of distinct items within 200 s: dedup window "
            "(64 ids) and seen list (100 items) full",
        },
        "table_users": users,
        "serialized_mib": round(serialized / 2**20, 1),
        "serialized_bytes_per_user": round(serialized / users, 0),
        "rss_delta_mib": round(rss1 - rss0, 1),
        "rss_bytes_per_user": round((rss1 - rss0) * 2**20 / users, 0),
        "note": "users records as compact JSON; RSS = Python dicts as in Faust's memory:// store",
    }


def measure_memory(index_dir: Path, plan: Plan) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--memory-child",
        str(index_dir),
        str(plan.mem_users),
        str(plan.mem_sample_users),
        str(plan.mem_events_per_user),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=590)
    if out.returncode != 0:
        raise RuntimeError(f"memory child failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- orchestration -------------------------------------------------------------------------------


def run_clicks(
    broker: Any, base: Settings, plan: Plan, run_id: str, index_dir: Path, args: Any
) -> dict[str, Any]:
    """Clicks-only drain; below target also: the same with OPENBLAS_NUM_THREADS=1, cProfile of
    both, and the Processor alone (no Kafka, no Faust) with both BLAS settings."""
    out: dict[str, Any] = {}
    clicks = make_events(plan.click_events, plan.users, "clicks=1", f"ck{run_id}-", args.reviews)
    s = worker_settings(base, f"bp{run_id}ck", WORK, broker=broker.url)
    asyncio.run(_create_topics(broker.bootstrap, s))
    produce_s = asyncio.run(_produce(broker.bootstrap, s, clicks))
    log(f"clicks: produced {len(clicks)} events in {produce_s:.1f} s")
    out["clicks"] = drain(broker, s, len(clicks), plan.phase_cap_s, "clicks")
    log(f"clicks: {json.dumps(out['clicks'])}")
    below = out["clicks"].get("events_per_s", 0) < TARGETS["clicks_events_per_s"]
    blas1 = {"OPENBLAS_NUM_THREADS": "1"}
    variants: list[tuple[str, dict[str, str]]] = [("default", {})]
    if "OPENBLAS_NUM_THREADS" not in WORKER_ENV and (
        args.blas_check == "always" or (args.blas_check == "auto" and below)
    ):
        variants.append(("openblas_1_thread", blas1))
        tag = f"bp{run_id}ck-blas1"
        bs = s.replace(app_id=f"{tag}-app", web_port=free_port(), data_dir=str(WORK / f"w-{tag}"))
        log("clicks: again with OPENBLAS_NUM_THREADS=1 (diagnostic)")
        out["clicks_openblas_1_thread"] = drain(
            broker, bs, len(clicks), plan.phase_cap_s, "clicks-blas1", extra_env=blas1
        )
        log(f"clicks, OPENBLAS_NUM_THREADS=1: {json.dumps(out['clicks_openblas_1_thread'])}")
    if args.profile == "always" or (args.profile == "auto" and below):
        out["clicks_profile"] = {}
        for label, env in variants:
            prof_path = WORK / f"clicks-{run_id}-{label}.prof"
            prof_path.unlink(missing_ok=True)
            tag = f"bp{run_id}ck-prof-{label.replace('_', '-')}"
            ps = s.replace(
                app_id=f"{tag}-app", web_port=free_port(), data_dir=str(WORK / f"w-{tag}")
            )
            log(f"clicks: profiling a worker on the same topics (cProfile, {label})")
            run = drain(
                broker, ps, len(clicks), plan.phase_cap_s, f"clicks-prof-{label}",
                profile_to=prof_path, extra_env=env,
            )  # fmt: skip
            report = profile_report(prof_path) if prof_path.exists() else {}
            out["clicks_profile"][label] = {
                "env": env,
                "run": run,
                **report,
                "file": str(prof_path.relative_to(ROOT)),
                "timer": "wall clock, the worker's main thread (the event loop)",
            }
    core = {}
    for label, env in variants:
        core[label] = core_child(index_dir, plan.core_events, plan.users, env)
        log(f"clicks, Processor alone ({label}): {json.dumps(core[label])}")
    out["clicks_core"] = core
    return out


def prepare_index(settings: Settings) -> Path:
    """Build (once) the demo index where every benchmark worker will look for it."""
    from stream.devtools.demo_index import with_demo_index

    return Path(with_demo_index(settings).index_dir)


def code_version() -> dict[str, Any]:
    """Which commit was measured, and whether stream/ had uncommitted changes."""

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=ROOT)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "stream_dirty": bool(git("status", "--porcelain", "--", "stream")),
    }


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    kinds = {f.name: f.type for f in fields(Settings)}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key not in kinds:
            raise SystemExit(f"--set wants field=value with a Settings field, got {pair!r}")
        out[key] = {"int": int, "float": float}.get(str(kinds[key]), str)(value)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (about 3 minutes)")
    parser.add_argument("--only", default="ceiling,mixed,clicks,latency,memory")
    parser.add_argument(
        "--profile",
        choices=("auto", "always", "never"),
        default="auto",
        help="profile the clicks-only worker (auto: when below target)",
    )
    parser.add_argument(
        "--reviews",
        choices=("sim", "amazon"),
        default="sim",
        help="review bodies: simulator texts or real Amazon reviews",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="worker setting override (repeatable)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment variable of every worker (repeatable)",
    )
    parser.add_argument(
        "--blas-check",
        choices=("auto", "always", "never"),
        default="never",
        help="rerun mixed and clicks with OPENBLAS_NUM_THREADS=1 forced (auto: below target); "
        "moot since `moodstream` sets it itself",
    )
    parser.add_argument(
        "--latency-rate",
        type=float,
        default=0.0,
        help="events/s for the latency run (default: half the mixed rate)",
    )
    parser.add_argument("--mixed-events", type=int)
    parser.add_argument("--click-events", type=int)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--memory-child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("--core-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.core_child:
        index_dir, n, users = args.core_child
        events = make_events(int(n), int(users), "clicks=1", "core-", "sim")
        print(json.dumps(measure_core_clicks(Path(index_dir), events, Settings())))
        return 0
    if args.memory_child:
        index_dir, users, sample, per_user = args.memory_child
        print(json.dumps(memory_child(index_dir, int(users), int(sample), int(per_user))))
        return 0

    plan = QUICK if args.quick else FULL
    if args.mixed_events:
        plan = replace(plan, mixed_events=args.mixed_events)
    if args.click_events:
        plan = replace(plan, click_events=args.click_events)
    if args.reviews == "amazon" and not REVIEWS_ZIP.is_file():
        raise SystemExit(f"--reviews amazon needs {REVIEWS_ZIP}")
    only = set(args.only.split(","))
    for pair in args.worker_env:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--worker-env wants NAME=VALUE, got {pair!r}")
        WORKER_ENV[name] = value
    WORK.mkdir(parents=True, exist_ok=True)
    run_id = time.strftime("%H%M%S")
    base = Settings(
        store="memory://", model_variant="int8", providers="cpu", log_level="info"
    ).replace(**parse_overrides(args.set))
    base = base.replace(data_dir=str(WORK / "w-prep"))
    started = time.perf_counter()
    result: dict[str, Any] = {
        "date": utc_now(),
        "machine": machine(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "busy_before": busy_processes(),
        "plan": asdict(plan) | {"quick": args.quick, "reviews": args.reviews},
        "settings": {
            k: getattr(base, k)
            for k in (
                "batch_size",
                "batch_events",
                "batch_wait_ms",
                "linger_ms",
                "recommend_interval_ms",
                "intra_op_threads",
                "score_threads",
                "partitions",
                "store",
                "model_variant",
                "providers",
                "top_k",
                "candidates",
                "dedup_window_s",
            )
        },
        "targets": TARGETS,
        "worker_env": dict(WORKER_ENV),
        "code": code_version(),
    }
    if result["busy_before"]:
        log("other busy processes: " + " | ".join(result["busy_before"]))

    mixed_events = make_events(
        plan.mixed_events,
        plan.users,
        "clicks=0.6,chats=0.25,reviews=0.15",
        f"mx{run_id}-",
        args.reviews,
    )
    mixed_texts = texts_of(mixed_events)
    kinds = Counter(k for k, _ in mixed_events)
    result["mix"] = dict(kinds)

    if "ceiling" in only:
        log(f"ceiling: {len(mixed_texts)} review+chat texts, batch 32, {plan.ceiling_s:.0f} s")
        result["ceiling"] = measure_ceiling(base, mixed_texts, plan.ceiling_s)
        log(f"ceiling: {result['ceiling']['texts_per_s_median']} texts/s")
        share = len(mixed_texts) / len(mixed_events)
        # A worker takes up to batch_events events and scores their texts batch_size at a time.
        small = max(1, min(base.batch_size, round(base.batch_events * share)))
        result["ceiling_at_worker_batch"] = measure_ceiling(
            base, mixed_texts, plan.ceiling_s / 3, batch=small
        ) | {"why": f"batch_size {base.batch_size} events x {share:.2f} texts per event"}
        log(
            f"ceiling at batch {small}: "
            f"{result['ceiling_at_worker_batch']['texts_per_s_median']} texts/s"
        )

    index_dir = prepare_index(base)
    if only & {"mixed", "clicks", "latency"}:
        from stream.devtools.broker import KafkaBroker

        with KafkaBroker(echo=log) as broker:
            assert broker.proc is not None
            boot = broker.bootstrap
            log(f"broker {broker.version} at {boot}")
            if "mixed" in only:
                s = worker_settings(base, f"bp{run_id}mx", WORK, broker=broker.url)
                asyncio.run(_create_topics(boot, s))
                produce_s = asyncio.run(_produce(boot, s, mixed_events))
                log(f"mixed: produced {len(mixed_events)} events in {produce_s:.1f} s")
                result["mixed"] = drain(broker, s, len(mixed_events), plan.phase_cap_s, "mixed")
                ceiling = result.get("ceiling", {}).get("texts_per_s_median")
                if ceiling and "texts_per_s" in result["mixed"]:
                    result["mixed"]["texts_vs_ceiling"] = round(
                        result["mixed"]["texts_per_s"] / ceiling, 3
                    )
                log(f"mixed: {json.dumps(result['mixed'])}")
                ratio = result["mixed"].get("texts_vs_ceiling", 1.0)
                if "OPENBLAS_NUM_THREADS" not in WORKER_ENV and (
                    args.blas_check == "always"
                    or (args.blas_check == "auto" and ratio < TARGETS["pipeline_vs_ceiling"])
                ):
                    tag = f"bp{run_id}mx-blas1"
                    bs = s.replace(
                        app_id=f"{tag}-app", web_port=free_port(), data_dir=str(WORK / f"w-{tag}")
                    )
                    log("mixed: again with OPENBLAS_NUM_THREADS=1 (diagnostic)")
                    mb = drain(
                        broker, bs, len(mixed_events), 0.75 * plan.phase_cap_s, "mixed-blas1",
                        extra_env={"OPENBLAS_NUM_THREADS": "1"},
                    )  # fmt: skip
                    if ceiling and "texts_per_s" in mb:
                        mb["texts_vs_ceiling"] = round(mb["texts_per_s"] / ceiling, 3)
                    result["mixed_openblas_1_thread"] = mb
                    log(f"mixed, OPENBLAS_NUM_THREADS=1: {json.dumps(mb)}")
            if "clicks" in only:
                result.update(run_clicks(broker, base, plan, run_id, index_dir, args))
            if "latency" in only:
                mixed_rate = result.get("mixed", {}).get("events_per_s")
                rate = args.latency_rate or (0.5 * mixed_rate if mixed_rate else 100.0)
                s = worker_settings(
                    base, f"bp{run_id}lt", WORK, broker=broker.url, recommend_interval_ms=0
                )
                asyncio.run(_create_topics(boot, s))
                n = int(rate * plan.latency_s * 1.1) + 100
                events = make_events(
                    n,
                    plan.users,
                    "clicks=0.6,chats=0.25,reviews=0.15",
                    f"lt{run_id}-",
                    args.reviews,
                )
                worker = Worker(env_of(s) | WORKER_ENV, WORK / "logs" / "latency.log")
                worker.start()
                time.sleep(2.0)  # partitions assigned, agents waiting
                cpu = CpuWindow(
                    {"worker": worker.pid, "broker": broker.proc.pid, "bench": os.getpid()}
                ).start()
                try:
                    log(
                        f"latency: {rate:.0f} events/s for {plan.latency_s:.0f} s, "
                        "recommend_interval_ms=0"
                    )
                    lat = asyncio.run(
                        _paced(boot, s, events, rate, plan.latency_s, plan.latency_warmup_s)
                    )
                finally:
                    lat["cpu"] = cpu.stop()
                    worker.stop()
                lat["recommend_interval_ms"] = 0
                result["latency"] = lat
                log(f"latency: {json.dumps(lat)}")

    if "memory" in only:
        log(
            f"memory: {plan.mem_sample_users} users' history folded, tables of "
            f"{plan.mem_users} users"
        )
        result["memory"] = measure_memory(index_dir, plan)
        log(f"memory: {json.dumps(result['memory'])}")

    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["busy_after"] = busy_processes()
    result["elapsed_s"] = round(time.perf_counter() - started, 1)
    result["verdicts"] = verdicts(result)
    table = render_table(result)
    print(table)
    if not args.no_write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "pipeline.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / "pipeline.md").write_text(render_md(result, table))
        log(f"wrote {RESULTS / 'pipeline.json'} and pipeline.md")
    return 0


def verdicts(r: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}

    def judge(name: str, value: float | None, target: float, higher: bool) -> None:
        if value is None:
            return
        ok = value >= target if higher else value <= target
        out[name] = f"{value:g} vs target {'>=' if higher else '<='} {target:g}: " + (
            "met" if ok else "MISSED"
        )

    judge(
        "pipeline texts/s vs ceiling",
        r.get("mixed", {}).get("texts_vs_ceiling"),
        TARGETS["pipeline_vs_ceiling"],
        True,
    )
    judge(
        "clicks-only events/s",
        r.get("clicks", {}).get("events_per_s"),
        TARGETS["clicks_events_per_s"],
        True,
    )
    judge(
        "latency p99 ms (worker)",
        r.get("latency", {}).get("worker_latency_ms", {}).get("p99"),
        TARGETS["latency_p99_ms"],
        False,
    )
    judge(
        "latency p99 ms (end to end)",
        r.get("latency", {}).get("end_to_end_ms", {}).get("p99"),
        TARGETS["latency_p99_ms"],
        False,
    )
    mem = r.get("memory", {})
    if mem:
        judge(
            "state bytes/user beyond taste (median)",
            mem["beyond_taste_bytes"]["median"],
            TARGETS["state_bytes_beyond_taste"],
            False,
        )
        judge(
            "state bytes/user beyond taste (saturated user)",
            mem["saturated_user"]["beyond_taste_bytes"],
            TARGETS["state_bytes_beyond_taste"],
            False,
        )
    return out


def render_table(r: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = []
    c = r.get("ceiling")
    if c:
        rows.append(
            (
                "inference ceiling (model alone, batch 32, sorted+cut)",
                f"{c['texts_per_s_median']} texts/s",
            )
        )
    c2 = r.get("ceiling_at_worker_batch")
    if c2:
        rows.append(
            (
                f"inference ceiling at batch {c2['batch']} (what a worker batch holds)",
                f"{c2['texts_per_s_median']} texts/s",
            )
        )
    m = r.get("mixed")
    if m and "events_per_s" in m:
        rows += [
            ("mixed 60/25/15: sustained events/s (10-90%)", f"{m['events_per_s']}"),
            ("mixed: events/s that need the model", f"{m['texts_per_s']} texts/s"),
            ("mixed: texts/s vs ceiling", f"{m.get('texts_vs_ceiling', 'n/a')}"),
            ("mixed: recommendations/s", f"{m['recommendations_per_s']}"),
            (
                "mixed: worker / broker / others cores",
                f"{m['cpu']['worker_cores']} / {m['cpu']['broker_cores']} / "
                f"{m['cpu']['others_cores']}",
            ),
        ]
    mb = r.get("mixed_openblas_1_thread")
    if mb and "events_per_s" in mb:
        rows += [
            ("mixed with OPENBLAS_NUM_THREADS=1 (diagnostic): events/s", f"{mb['events_per_s']}"),
            (
                "mixed with OPENBLAS_NUM_THREADS=1: texts/s, vs ceiling",
                f"{mb['texts_per_s']}, {mb.get('texts_vs_ceiling', 'n/a')}",
            ),
        ]
    k = r.get("clicks")
    if k and "events_per_s" in k:
        rows += [
            ("clicks-only: sustained events/s (10-90%)", f"{k['events_per_s']}"),
            (
                "clicks-only: worker / broker / others cores",
                f"{k['cpu']['worker_cores']} / {k['cpu']['broker_cores']} / "
                f"{k['cpu']['others_cores']}",
            ),
        ]
    kb = r.get("clicks_openblas_1_thread")
    if kb and "events_per_s" in kb:
        rows.append(
            ("clicks-only with OPENBLAS_NUM_THREADS=1 (diagnostic)", f"{kb['events_per_s']}")
        )
    for label, core in r.get("clicks_core", {}).items():
        rows.append(
            (
                f"clicks, Processor alone, no Kafka/Faust ({label})",
                f"{core['events_per_s']} ev/s; recommend {core['share']['recommend']:.0%}",
            )
        )
    lt = r.get("latency")
    if lt:
        w, e = lt["worker_latency_ms"], lt["end_to_end_ms"]
        rows += [
            (
                f"latency at {lt['rate_achieved']} ev/s, interval 0: worker p50/p99 ms",
                f"{w['p50']:.0f} / {w['p99']:.0f}",
            ),
            (
                "latency: end to end (send -> consumer) p50/p99 ms",
                f"{e['p50']:.0f} / {e['p99']:.0f}",
            ),
        ]
    mem = r.get("memory")
    if mem:
        beyond = mem["beyond_taste_bytes"]
        rows += [
            ("state: taste vector bytes/user (JSON)", f"{mem['taste_vector_bytes']}"),
            (
                "state: beyond taste bytes/user median / p90 / saturated",
                f"{beyond['median']:.0f} / {beyond['p90']:.0f}"
                f" / {mem['saturated_user']['beyond_taste_bytes']}",
            ),
            (
                f"state: {mem['table_users']} users serialized / RSS delta MiB",
                f"{mem['serialized_mib']} / {mem['rss_delta_mib']}",
            ),
            ("state: RSS bytes/user", f"{mem['rss_bytes_per_user']:.0f}"),
        ]
    width = max(len(a) for a, _ in rows) if rows else 10
    lines = [f"{'figure':<{width}}  value", f"{'-' * width}  -----"]
    lines += [f"{a:<{width}}  {b}" for a, b in rows]
    if r.get("verdicts"):
        lines.append("")
        lines += [f"{k}: {v}" for k, v in r["verdicts"].items()]
    return "\n".join(lines)


def render_md(r: dict[str, Any], table: str) -> str:
    mach = r["machine"]
    lines = [
        "# Pipeline benchmark",
        "",
        f"Run {r['date']} on {mach['cpu']} ({mach['cores']} cores, {mach['memory_gib']} GiB), "
        f"Python {mach['python']}, ONNX Runtime {mach['onnxruntime']}; "
        f"load average {r['load_before'][0]} before, {r['load_after'][0]} after; "
        f"{r['elapsed_s']} s in all. Code: commit {r['code']['commit']}"
        f"{' + uncommitted changes in stream/' if r['code']['stream_dirty'] else ''}.",
        "",
        "Worker settings: " + ", ".join(f"{k}={v}" for k, v in r["settings"].items()) + ".",
        "",
        "```",
        table,
        "```",
        "",
    ]
    if r.get("busy_before") or r.get("busy_after"):
        lines += ["Other busy processes (lifetime %CPU from ps):", ""]
        lines += [f"- {p}" for p in r.get("busy_before", []) + r.get("busy_after", [])]
        lines.append("")
    for prof in r.get("clicks_profile", {}).values():
        if "top_own" not in prof:
            continue
        env = " ".join(f"{k}={v}" for k, v in prof["env"].items()) or "default environment"
        lines += [
            f"## Clicks-only worker hot spots, {env} (cProfile, {prof['profiled_s']} s of "
            f"{prof['timer']}; rate under the profiler {prof['run'].get('events_per_s')} ev/s)",
            "",
            "| function | own share | inclusive share | calls |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{h['function']}` | {h['own_share']:.1%} | {h['inclusive_share']:.1%} | "
            f"{h['calls']} |"
            for h in prof["top_own"][:20]
        ]
        lines += [
            "",
            "Project functions by inclusive time:",
            "",
            "| function | inclusive share | own share | calls |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| `{h['function']}` | {h['inclusive_share']:.1%} | {h['own_share']:.1%} | "
            f"{h['calls']} |"
            for h in prof["stream_inclusive"][:20]
        ]
        lines += ["", "Own time per package:", ""]
        lines += [f"- {p['package']}: {p['own_share']:.1%}" for p in prof["packages"]]
        lines.append("")
    for core in r.get("clicks_core", {}).values():
        env = " ".join(f"{k}={v}" for k, v in core["env"].items()) or "default environment"
        steps = ", ".join(
            f"{k} {v} us ({core['share'][k]:.0%})" for k, v in core["us_per_event"].items()
        )
        lines.append(
            f"- Processor alone on clicks ({env}): {core['events_per_s']} ev/s; per event: {steps}."
        )
    if r.get("clicks_core"):
        lines.append("")
    lines += ["Full figures: `benchmarks/results/pipeline.json`.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
