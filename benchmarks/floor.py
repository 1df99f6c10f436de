"""Framework floor: how many events/s a Faust worker sustains here doing almost nothing.

    .venv/bin/python benchmarks/floor.py [--events 30000]

The same clicks the pipeline benchmark drains are produced to a real Kafka broker first; then, one
after another, minimal Faust workers (no model, no index, no moodstream code on the hot path)
drain them with the worker's own batching (``noack_take`` of 256, 20 ms, manual acks):

- ``ack``: decode nothing, acknowledge each event;
- ``table``: also one 2 KB table write per event (a user record's size; a changelog message);
- ``table_send``: also one 1 KB JSON send per event (a recommendation's size).

A moodstream click costs more messages than the last line (user record, recommendation, item
event out and in, item record), so these rates bound what any application code can reach on this
machine. Writes benchmarks/results/floor.json and floor.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, utc_now  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODES = ("ack", "table", "table_send")


def floor_app(mode: str, app_id: str, broker: str, topic: str, expected: int) -> Any:
    """A Faust app that drains ``topic`` in ``mode`` and exits with its rate on stdout."""
    import weakref

    import faust
    from faust.streams import _current_event

    app = faust.App(
        app_id,
        broker=broker,
        store="memory://",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        producer_linger=0.005,
        topic_partitions=4,
        autodiscover=False,
        logging_config=None,
    )
    clicks = app.topic(topic, key_serializer="raw", value_serializer="raw")
    out = app.topic(f"{app_id}-out", partitions=4, key_serializer="raw", value_serializer="json")
    users = app.Table("users", default=None, partitions=4, key_type=str)
    record = {"v": "x" * 2000}
    message = {"v": "y" * 1000}
    seen = {"n": 0, "t0": 0.0, "t10": 0.0, "n10": 0, "t90": 0.0, "n90": 0}

    @app.agent(clicks)
    async def drain(stream: Any) -> None:
        await out.maybe_declare()  # the broker creates no topic on first use
        async for batch in stream.noack_take(256, 0.02):
            if not seen["n"]:
                seen["t0"] = time.perf_counter()
            for event in batch:
                if mode != "ack":
                    _current_event.set(weakref.ref(event))
                    users[json.loads(event.message.value)["user_id"]] = record
                if mode == "table_send":
                    await out.send(key=event.message.key, value=message)
                await stream.ack(event)
            seen["n"] += len(batch)
            mark(seen, expected)
            if seen["n"] >= expected:
                rate = seen["n"] / (time.perf_counter() - seen["t0"])
                steady = (seen["n90"] - seen["n10"]) / max(seen["t90"] - seen["t10"], 1e-9)
                line = {"mode": mode, "events_per_s": round(rate, 1)}
                print(json.dumps(line | {"steady_events_per_s": round(steady, 1)}), flush=True)
                os._exit(0)

    return app


def mark(seen: dict[str, Any], expected: int) -> None:
    """Time and count at the 10% and 90% marks: the steady rate, as the pipeline benchmark's."""
    for label, frac in (("10", 0.1), ("90", 0.9)):
        if not seen[f"n{label}"] and seen["n"] >= frac * expected:
            seen[f"t{label}"], seen[f"n{label}"] = time.perf_counter(), seen["n"]


def run_mode(mode: str, broker: str, topic: str, expected: int, tag: str) -> dict[str, Any]:
    env = dict(
        os.environ,
        FLOOR_ARGS=json.dumps([mode, f"floor-{tag}-{mode}", broker, topic, expected]),
    )
    code = (
        "import json, os, sys; sys.argv = ['floor', 'worker', '-l', 'warn'];"
        "from benchmarks.floor import floor_app;"
        "floor_app(*json.loads(os.environ['FLOOR_ARGS'])).main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in (done.stdout + done.stderr).splitlines():
        if '"mode"' in line:
            return dict(json.loads(line[line.index("{") : line.rindex("}") + 1]))
    raise RuntimeError(f"{mode}: no result\n{done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=30_000)
    args = parser.parse_args(argv)
    from benchmarks.pipeline.config import log
    from benchmarks.pipeline.events import make_events
    from benchmarks.pipeline.load import create_topics, produce
    from stream.devtools.broker import KafkaBroker
    from stream.settings import Settings

    clicks = make_events(args.events, 5000, "clicks=1", "floor-", "sim")
    tag = time.strftime("%H%M%S")
    result: dict[str, Any] = {"date": utc_now(), "machine": machine(), "events": len(clicks)}
    with KafkaBroker(echo=log) as broker:
        settings = Settings(broker=broker.url, topic_prefix=f"floor{tag}.")
        asyncio.run(create_topics(broker.bootstrap, settings))
        asyncio.run(produce(broker.bootstrap, settings, clicks))
        topic = settings.topic("clicks")
        rates = {}
        for mode in MODES:
            expected = int(0.97 * len(clicks))
            rates[mode] = run_mode(mode, broker.url, topic, expected, tag)["events_per_s"]
            log(f"{mode}: {rates[mode]} events/s")
    result["events_per_s"] = rates
    result["us_per_event"] = {m: round(1e6 / r, 1) for m, r in rates.items()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "floor.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Faust floor",
        "",
        f"Run {result['date']} on {result['machine']['cpu']} ({result['machine']['cores']} "
        f"cores), broker on the same machine; {len(clicks)} clicks drained per mode.",
        "",
        "| mode | events/s | us/event |",
        "|---|---|---|",
        *(f"| {m} | {rates[m]} | {result['us_per_event'][m]} |" for m in MODES),
        "",
    ]
    (RESULTS / "floor.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
