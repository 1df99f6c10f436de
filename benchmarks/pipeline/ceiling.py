"""1. The inference ceiling: texts/s of the model alone."""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from benchmarks.common import CpuWindow
from stream.settings import Settings


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
