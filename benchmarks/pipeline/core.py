"""The core-only child: the worker's per-batch work for clicks without Kafka or Faust."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT
from stream.settings import Settings


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
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.pipeline",
        "--core-child",
        str(index_dir),
        str(n),
        str(users),
    ]
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
