"""The training run's configuration, kept apart so that schedule, checkpoint and train share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a run; stored in checkpoints and the model card."""

    seed: int = 13
    val_fraction: float = 0.05
    epochs: float = 1.25
    batch_size: int = 32
    max_length: int = 128
    lr_encoder: float = 5e-5
    lr_heads: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    emotion_weight: float = 1.0
    # Keep the pooled embedding near the base encoder's (1 - cosine to a frozen copy): the stream
    # uses it for item search, so it should stay topical rather than collapse onto sentiment.
    distill_weight: float = 2.0
    neutral_weight_power: float = 0.5  # class weight = (mean count / class count) ** power
    sst2_fraction: float = 1.0  # subsample SST-2 training rows (phrases) to fit the time budget
    sst2_rows: int = 0  # >0: a class-balanced sample of this many phrases (replaces the fraction)
    min_phrase_words: int = 1  # phrases shorter than this are dropped (single words add little)
    sst5_repeat: int = 1  # SST-5 training sentences appear this many times per epoch
    lr_schedule: str = "linear"  # after warmup: "linear" or "cosine" decay to 0
    emotion_fraction: float = 1.0  # seeded share of GoEmotions training rows used per run
    init_from: str = ""  # warm start: a shipped model folder (fp16 ONNX) or a state dict .pt
    eval_every: int = 0  # >0: score the select halves every this many steps, keep the best
    patience: int = 0  # >0: stop after this many evaluations without improvement
    freeze_word_embeddings: bool = True  # keeps the 11.7M-row embedding out of AdamW: faster
    max_steps: int = 0  # 0 = the full schedule; >0 stops early (throughput probes)
    checkpoint_every: int = 200
    threads: int = 2


# Runtime knobs a resumed run may change. ``epochs`` re-stretches the LR decay from the resume
# step on (the batch order of the epochs already planned is unchanged); the card records it.
RESUMABLE_CHANGES = frozenset({"threads", "checkpoint_every", "epochs"})


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Keys whose values differ between two config dicts, as ``[old, new]`` (resume check)."""
    return {
        k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    }
