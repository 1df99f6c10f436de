"""Tokenising and the row splits a run trains, tunes and selects on (never the test halves)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

from export.data import (
    DataPaths,
    EmotionRow,
    SentimentRow,
    balanced_phrases,
    binary_only,
    dev_halves,
    fingerprint,
    load_goemotions,
    load_sst2,
    load_sst5,
    split_rows,
)
from export.train_config import TrainConfig


def tokenizer_for(path: Path, max_length: int) -> Tokenizer:
    """The base tokenizer with its baked-in pad-to-128 removed and truncation set explicitly."""
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def encode(tok: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    """Token ids per text (no padding: batches are padded to their own longest row)."""
    return [e.ids for e in tok.encode_batch(list(texts))]


@dataclass
class Splits:
    sent_train: list[SentimentRow]
    sent_val: list[SentimentRow]  # SST-2 phrases carved from train.tsv: train-distribution only
    emo_train: list[EmotionRow]
    emo_val: list[EmotionRow]  # carved from GoEmotions train: threshold tuning
    sst2_val_n: int
    files: dict[str, dict[str, object]]
    sent_select: list[SentimentRow] = dataclasses.field(default_factory=list)
    emo_select: list[EmotionRow] = dataclasses.field(default_factory=list)


def load_splits(paths: DataPaths, cfg: TrainConfig) -> Splits:
    """Training rows, the tuning split and the sentence-level *select* halves of the dev files.

    All SST-5 training sentences train (``sst5_repeat`` times per epoch); validation for
    selection comes from the dev files' select halves, never from the phrase split.
    """
    paths.check()
    sst2 = load_sst2(paths.sst2_train)
    sst5 = load_sst5(paths.sst5_train)
    go = load_goemotions(paths.go_train, paths.go_labels)
    sst2_tr, sst2_va = split_rows(sst2, cfg.val_fraction, cfg.seed)
    go_tr, go_va = split_rows(go, cfg.val_fraction, cfg.seed + 2)
    if cfg.emotion_fraction < 1.0:
        go_tr = random.Random(cfg.seed + 4).sample(go_tr, round(len(go_tr) * cfg.emotion_fraction))
    if cfg.sst2_rows > 0 or cfg.min_phrase_words > 1:
        sst2_tr = balanced_phrases(sst2_tr, cfg.sst2_rows, cfg.seed + 3, cfg.min_phrase_words)
    elif cfg.sst2_fraction < 1.0:
        sst2_tr = random.Random(cfg.seed + 3).sample(
            sst2_tr, round(len(sst2_tr) * cfg.sst2_fraction)
        )
    sent_select, _ = heldout_halves(paths, cfg.seed)["sst5"]
    emo_select, _ = heldout_halves(paths, cfg.seed)["goemotions"]
    files = {
        "sst2_train": fingerprint(paths.sst2_train, len(sst2)),
        "sst5_train": fingerprint(paths.sst5_train, len(sst5)),
        "goemotions_train": fingerprint(paths.go_train, len(go)),
    }
    files["sst2_train"]["used_for_training"] = len(sst2_tr)
    files["sst5_train"]["used_for_training"] = len(sst5) * max(1, cfg.sst5_repeat)
    return Splits(
        sst2_tr + sst5 * max(1, cfg.sst5_repeat),
        sst2_va,
        go_tr,
        go_va,
        len(sst2_va),
        files,
        sent_select,
        emo_select,
    )


HALF_SEEDS = {"sst5": 101, "goemotions": 102}


def heldout_halves(paths: DataPaths, seed: int) -> dict[str, tuple[list[Any], list[Any]]]:
    """(select, test) halves of sst5/dev.txt binarised and of GoEmotions dev (seeded)."""
    return {
        "sst5": dev_halves(binary_only(load_sst5(paths.sst5_dev)), seed + HALF_SEEDS["sst5"]),
        "goemotions": dev_halves(load_goemotions(paths.go_dev), seed + HALF_SEEDS["goemotions"]),
    }
