"""The model folder's card: what the runtime relies on, checked against the artifact files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core.labels import emotion_thresholds
from stream.errors import ModelError
from stream.ports import EMOTIONS, SENTIMENTS, SentimentModel


@dataclass(frozen=True)
class ModelCard:
    """The parts of ``card.json`` the runtime relies on."""

    name: str
    version: str
    max_length: int
    embedding_dim: int
    thresholds: npt.NDArray[np.float32]  # per emotion, EMOTIONS order
    files: Mapping[str, Mapping[str, Any]]
    raw: Mapping[str, Any]

    @classmethod
    def load(cls, model_dir: Path) -> ModelCard:
        path = model_dir / "card.json"
        if not model_dir.is_dir():
            raise ModelError(f"model folder {model_dir} does not exist")
        if not path.is_file():
            raise ModelError(f"{path} is missing: not a moodstream model folder")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            labels = raw["labels"]
            if list(labels["sentiment"]) != list(SENTIMENTS):
                raise ModelError(f"{path}: sentiment labels {labels['sentiment']} != {SENTIMENTS}")
            if list(labels["emotions"]) != list(EMOTIONS):
                raise ModelError(f"{path}: emotion labels differ from stream.ports.EMOTIONS")
            thresholds = raw.get("thresholds", 0.5)
            if isinstance(thresholds, Mapping) and "emotion" in thresholds:
                thresholds = thresholds["emotion"]  # one threshold for every emotion
            return cls(
                name=str(raw["name"]),
                version=str(raw["version"]),
                max_length=int(raw["max_length"]),
                embedding_dim=int(raw["embedding_dim"]),
                thresholds=emotion_thresholds(thresholds),
                files=dict(raw["files"]),
                raw=raw,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} is unreadable or incomplete: {exc!r}") from exc

    def verify(self, path: Path) -> None:
        """Check size and sha256 of one artifact file against the card (~30 ms for 23 MB)."""
        entry = self.files.get(path.name)
        if entry is None:
            raise ModelError(f"card.json lists no hash for {path.name}")
        if not path.is_file():
            raise ModelError(f"{path} is missing")
        size = path.stat().st_size
        if "bytes" in entry and int(entry["bytes"]) != size:
            raise ModelError(f"{path} has {size} bytes, card.json says {entry['bytes']}: corrupt?")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise ModelError(f"{path} sha256 {digest[:12]}... does not match card.json: corrupt?")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(model_dir: str | Path, model: SentimentModel | None = None) -> str:
    """What the index records as ``model_sha256``: the sha256 of the model's ``card.json``.

    The card lists every artifact's hash, so it names the embedding space whichever variant
    (int8, fp16) runs; the worker compares it before serving an index.
    """
    card = Path(model_dir) / "card.json"
    if card.is_file():
        return hashlib.sha256(card.read_bytes()).hexdigest()
    if model is not None:
        return hashlib.sha256(model.version.encode("utf-8")).hexdigest()
    raise ModelError(f"{card} is missing: not a moodstream model folder")
