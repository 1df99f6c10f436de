"""The run's batch plan, loss class weights, optimiser and learning-rate schedule.

Pure functions of the config (and seed), so a resumed run rebuilds exactly the same plan.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from export.data import length_batches
from export.onnx_model import MoodModel
from export.train_config import TrainConfig
from stream.errors import ConfigError
from stream.ports import SENTIMENTS


def schedule(
    sent_len: Sequence[int], emo_len: Sequence[int], cfg: TrainConfig
) -> list[tuple[str, list[int]]]:
    """The whole run's ordered (task, row indices) list; a pure function of the seed."""
    steps: list[tuple[str, list[int]]] = []
    for epoch in range(math.ceil(cfg.epochs)):
        s = length_batches(sent_len, cfg.batch_size, cfg.seed * 1000 + 2 * epoch)
        e = length_batches(emo_len, cfg.batch_size, cfg.seed * 1000 + 2 * epoch + 1)
        tags = ["s"] * len(s) + ["e"] * len(e)
        random.Random(cfg.seed * 7919 + epoch).shuffle(tags)
        si = ei = 0
        part: list[tuple[str, list[int]]] = []
        for tag in tags:
            if tag == "s":
                part.append(("s", s[si]))
                si += 1
            else:
                part.append(("e", e[ei]))
                ei += 1
        share = min(1.0, cfg.epochs - epoch)
        steps.extend(part[: round(len(part) * share)])
    return steps[: cfg.max_steps] if cfg.max_steps > 0 else steps


def class_weights(labels: Sequence[int], power: float) -> torch.Tensor:
    """Sentiment loss weights that damp the majority class; scaled to keep the mean loss level."""
    counts = np.bincount(np.asarray(labels), minlength=len(SENTIMENTS)).astype(np.float64)
    w = (counts.mean() / np.maximum(counts, 1.0)) ** power
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


def make_optimizer(model: MoodModel, cfg: TrainConfig, total: int) -> tuple[Any, Any]:
    """AdamW with encoder/head learning rates (no decay on biases and norms) and its scheduler."""
    if cfg.freeze_word_embeddings:
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    enc_decay, enc_plain, heads = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(("sentiment_head", "emotion_head")):
            heads.append(p)
        elif p.ndim < 2:
            enc_plain.append(p)
        else:
            enc_decay.append(p)
    opt = torch.optim.AdamW(
        [
            {"params": enc_decay, "lr": cfg.lr_encoder, "weight_decay": cfg.weight_decay},
            {"params": enc_plain, "lr": cfg.lr_encoder, "weight_decay": 0.0},
            {"params": heads, "lr": cfg.lr_heads, "weight_decay": cfg.weight_decay},
        ]
    )
    warm = max(1, round(total * cfg.warmup_fraction))
    if cfg.lr_schedule not in ("linear", "cosine"):
        raise ConfigError(f"lr_schedule must be linear or cosine, got {cfg.lr_schedule!r}")

    def factor(step: int) -> float:
        return lr_factor(step, total, warm, cfg.lr_schedule)

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def lr_factor(step: int, total: int, warm: int, kind: str = "linear") -> float:
    """Linear warmup to 1 over ``warm`` steps, then linear or cosine decay to 0 at ``total``."""
    if step < warm:
        return (step + 1) / warm
    done = min(1.0, (step - warm) / max(1, total - warm))
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    return max(0.0, 1.0 - done)
