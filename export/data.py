"""Training data: parse SST-2, SST-5 and GoEmotions into typed rows, split and fingerprint them.

The held-out ``dev`` files are only ever scored at the end; validation rows are carved from the
*training* files with a seeded split so threshold tuning never sees held-out data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from stream.adapters.model_card import sha256_file
from stream.errors import DatasetError
from stream.ports import EMOTIONS, SENTIMENTS

NEGATIVE, NEUTRAL, POSITIVE = (SENTIMENTS.index(s) for s in ("negative", "neutral", "positive"))
# SST-5 fine-grained label -> our 3-way label (0-1 negative, 2 neutral, 3-4 positive).
SST5_TO_3WAY: dict[int, int] = {0: NEGATIVE, 1: NEGATIVE, 2: NEUTRAL, 3: POSITIVE, 4: POSITIVE}


@dataclass(frozen=True)
class SentimentRow:
    text: str
    label: int  # index into SENTIMENTS


@dataclass(frozen=True)
class EmotionRow:
    text: str
    labels: tuple[int, ...]  # indices into EMOTIONS (at least one)


@dataclass(frozen=True)
class DataPaths:
    """Where each file lives below the shared data folder."""

    root: Path

    @property
    def sst2_train(self) -> Path:
        return self.root / "sentiment" / "sst2" / "train.tsv"

    @property
    def sst2_dev(self) -> Path:
        return self.root / "sentiment" / "sst2" / "dev.tsv"

    @property
    def sst5_train(self) -> Path:
        return self.root / "sentiment" / "sst5" / "train.txt"

    @property
    def sst5_dev(self) -> Path:
        return self.root / "sentiment" / "sst5" / "dev.txt"

    @property
    def go_train(self) -> Path:
        return self.root / "emotion" / "goemotions" / "train.tsv"

    @property
    def go_dev(self) -> Path:
        return self.root / "emotion" / "goemotions" / "dev.tsv"

    @property
    def go_labels(self) -> Path:
        return self.root / "emotion" / "goemotions" / "labels.txt"

    def training_files(self) -> dict[str, Path]:
        return {
            "sst2_train": self.sst2_train,
            "sst5_train": self.sst5_train,
            "goemotions_train": self.go_train,
        }

    def heldout_files(self) -> dict[str, Path]:
        return {"sst2_dev": self.sst2_dev, "sst5_dev": self.sst5_dev, "goemotions_dev": self.go_dev}

    def check(self) -> None:
        """Fail with one line naming the first missing file."""
        for path in [
            *self.training_files().values(),
            *self.heldout_files().values(),
            self.go_labels,
        ]:
            if not path.is_file():
                raise DatasetError(f"data file not found: {path}")


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc


def load_sst2(path: Path) -> list[SentimentRow]:
    """``sentence<TAB>label`` with a header; 0 -> negative, 1 -> positive. Bad rows are skipped."""
    rows: list[SentimentRow] = []
    for line in _read_lines(path)[1:]:
        text, sep, label = line.rpartition("\t")
        text = text.strip()
        if not sep or not text or label.strip() not in ("0", "1"):
            continue
        rows.append(SentimentRow(text, POSITIVE if label.strip() == "1" else NEGATIVE))
    return rows


def load_sst5(path: Path) -> list[SentimentRow]:
    """``label sentence`` per line (labels 0-4) mapped to three classes. Bad rows are skipped."""
    rows: list[SentimentRow] = []
    for line in _read_lines(path):
        label, _, text = line.partition(" ")
        text = text.strip()
        if not text or not label.isdigit() or int(label) not in SST5_TO_3WAY:
            continue
        rows.append(SentimentRow(text, SST5_TO_3WAY[int(label)]))
    return rows


def load_goemotions(path: Path, labels_path: Path | None = None) -> list[EmotionRow]:
    """``text<TAB>ids<TAB>comment id``; ids are comma separated indices into ``labels.txt``.

    When ``labels_path`` is given its order must equal ``EMOTIONS`` (the model's output order).
    """
    if labels_path is not None:
        names = tuple(n.strip() for n in _read_lines(labels_path) if n.strip())
        if names != EMOTIONS:
            raise DatasetError(f"{labels_path} does not list the labels in EMOTIONS order")
    rows: list[EmotionRow] = []
    for line in _read_lines(path):
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].strip():
            continue
        try:
            ids = tuple(sorted({int(x) for x in parts[1].split(",") if x.strip()}))
        except ValueError:
            continue
        if not ids or not all(0 <= i < len(EMOTIONS) for i in ids):
            continue
        rows.append(EmotionRow(parts[0].strip(), ids))
    return rows


T = TypeVar("T")


def split_rows(rows: Sequence[T], fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """Seeded (train, validation) split; the same seed and rows always give the same split."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"validation fraction must be in (0, 1), got {fraction}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(rows) * fraction)) if rows else 0
    val_idx = set(order[:n_val])
    train = [r for i, r in enumerate(rows) if i not in val_idx]
    val = [r for i, r in enumerate(rows) if i in val_idx]
    return train, val


def fingerprint(path: Path, rows: int) -> dict[str, object]:
    """What the model card records per data file: parsed rows, bytes and content hash."""
    return {
        "path": str(path),
        "rows": rows,
        "bytes": path.stat().st_size,
        "sha256": sha256_file(path),
    }


def length_batches(
    lengths: Sequence[int], batch_size: int, seed: int, chunk_batches: int = 50
) -> list[list[int]]:
    """Shuffle, then sort by length inside chunks of ``chunk_batches`` batches and cut batches.

    Batches hold similar lengths (little padding) while the chunking keeps them random enough;
    the returned batch order is shuffled too.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    chunk = batch_size * chunk_batches
    batches: list[list[int]] = []
    for start in range(0, len(order), chunk):
        part = sorted(order[start : start + chunk], key=lambda i: lengths[i])
        batches.extend(part[j : j + batch_size] for j in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches


def binary_only(rows: Sequence[SentimentRow]) -> list[SentimentRow]:
    """SST-2 style binarisation of 3-way rows: neutral (SST-5 label 2) dropped."""
    return [r for r in rows if r.label != NEUTRAL]


def dev_halves(rows: Sequence[T], seed: int) -> tuple[list[T], list[T]]:
    """Seeded (select, test) halves of a dev file: checkpoints are chosen on ``select`` only,
    ``test`` is scored once at the end and never steers training."""
    test, select = split_rows(rows, 0.5, seed)
    return select, test


def balanced_phrases(
    rows: Sequence[SentimentRow], n: int, seed: int, min_words: int = 1
) -> list[SentimentRow]:
    """A seeded sample of ``n`` SST-2 phrases, half negative and half positive (as far as the
    rows allow), skipping phrases shorter than ``min_words`` words. ``n <= 0`` keeps all."""
    long = [r for r in rows if len(r.text.split()) >= min_words]
    if n <= 0:
        return long
    rng = random.Random(seed)
    by_label: dict[int, list[SentimentRow]] = {}
    for r in long:
        by_label.setdefault(r.label, []).append(r)
    per = n // max(1, len(by_label))
    out: list[SentimentRow] = []
    for label in sorted(by_label):
        group = by_label[label]
        out.extend(rng.sample(group, min(per, len(group))))
    rng.shuffle(out)
    return out
