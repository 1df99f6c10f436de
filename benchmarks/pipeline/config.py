"""The plan, targets, paths and worker settings of the pipeline benchmark."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT
from stream.devtools.broker import free_port
from stream.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

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
    "clicks_vs_floor": 0.65,  # issue 12: of the floor's table_send rate, same run (goal 0.8)
    "board_freshness_p99_s": 2.0,
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
