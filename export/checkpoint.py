"""Checkpoints: the full training state saved atomically, and restoring it for ``--resume``.

A resumed run must continue the same run, so a checkpoint written with a different config (other
than the runtime knobs in ``RESUMABLE_CHANGES``) is refused rather than silently mixed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from export.onnx_model import MoodModel
from export.train_config import RESUMABLE_CHANGES, TrainConfig, config_changes
from stream.errors import ConfigError

log = logging.getLogger("moodstream.export.train")


def _fresh_best() -> dict[str, Any]:
    return {"score": -1.0, "step": 0}


@dataclass
class Progress:
    """Where a run stands: what a checkpoint carries besides weights and optimiser state."""

    start: int = 0
    wall_before: float = 0.0
    resumes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    evals: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best: dict[str, Any] = dataclasses.field(default_factory=_fresh_best)
    stopped_early: bool = False


def save_atomic(path: Path, state: dict[str, Any]) -> None:
    """Write to a temp file and rename, so a killed run never leaves a torn checkpoint."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def restore(ckpt: Path, cfg: TrainConfig, model: MoodModel, opt: Any, sched: Any) -> Progress:
    """Load weights, optimiser, scheduler and RNG from ``ckpt``; refuse a changed config."""
    state = torch.load(ckpt, weights_only=False)
    changes = config_changes(json.loads(state["config"]), dataclasses.asdict(cfg))
    if set(changes) - RESUMABLE_CHANGES:
        raise ConfigError(
            f"{ckpt} was written with another config ({', '.join(sorted(changes))}); "
            "start without --resume"
        )
    resumes = [*state.get("resumes", []), {"step": int(state["step"]), "changes": changes}]
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    start, wall_before = int(state["step"]), float(state["wall_s"])
    evals = [e for e in state.get("evals", []) if e["step"] <= start]
    best = dict(state.get("best", _fresh_best()))
    log.info("resumed at step %d", start)
    return Progress(start, wall_before, resumes, evals, best)


def checkpoint_state(
    model: MoodModel,
    opt: Any,
    sched: Any,
    step: int,
    config_json: str,
    progress: Progress,
    wall_s: float,
) -> dict[str, Any]:
    """Everything ``restore`` needs to continue bit-for-bit in schedule."""
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": torch.get_rng_state(),
        "step": step,
        "config": config_json,
        "resumes": progress.resumes,
        "evals": progress.evals,
        "best": progress.best,
        "wall_s": wall_s,
    }
