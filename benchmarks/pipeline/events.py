"""The simulated (or Amazon-review) events every phase produces."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from benchmarks.pipeline.config import REVIEWS_ZIP


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
