"""Progress sink of a backtest run, and the options and start of a run (both backtests)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict
from typing import Protocol as TypingProtocol


class Steps(TypingProtocol):
    """Progress sink (a rich progress bar at the CLI, nothing in tests)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...


class NoSteps:
    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None


class RunOptions(TypedDict, total=False):
    """The keywords either backtest run takes besides its data, model, settings and protocol."""

    variants: Sequence[str]  # reported (the baselines always run); default: the kind's own list
    dataset_info: Mapping[str, Any] | None  # shown in the report (name, counts)
    cache_dir: Path | None  # model scores are cached below it
    steps: Steps | None  # progress


@dataclass(frozen=True)
class RunStart:
    """A run's options with their defaults filled in, and its clock, started."""

    variants: Sequence[str]
    dataset_info: Mapping[str, Any] | None
    cache_dir: Path | None
    steps: Steps
    timings: dict[str, float]
    started: float

    @classmethod
    def of(cls, options: RunOptions, default_variants: Sequence[str]) -> RunStart:
        return cls(
            variants=options.get("variants", default_variants),
            dataset_info=options.get("dataset_info"),
            cache_dir=options.get("cache_dir"),
            steps=options.get("steps") or NoSteps(),
            timings={},
            started=time.perf_counter(),
        )
