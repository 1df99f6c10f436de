"""The two ports the core's edges depend on; ONNX and FAISS adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

EMOTIONS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)  # fmt: skip
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")
EKMAN: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral")


@dataclass(frozen=True)
class Scores:
    """Model output for a batch of n texts (row i belongs to text i)."""

    sentiment: npt.NDArray[np.float32]  # (n, 3) probabilities: negative, neutral, positive
    emotions: npt.NDArray[np.float32]  # (n, 28) independent probabilities, EMOTIONS order
    embedding: npt.NDArray[np.float32]  # (n, 384) L2-normalised pooled sentence embedding
    truncated: npt.NDArray[np.bool_]  # (n,) the text was longer than the model's max length

    @property
    def valence(self) -> npt.NDArray[np.float32]:
        return self.sentiment[:, 2] - self.sentiment[:, 0]


class SentimentModel(Protocol):
    @property
    def version(self) -> str: ...

    def predict(self, texts: Sequence[str]) -> Scores: ...


class ItemIndex(Protocol):
    @property
    def version(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def search(
        self, vectors: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], list[list[str]]]:
        """Top-k item ids by inner product for each row; scores (n, k), ids n lists of <= k."""
        ...

    def vectors(self, item_ids: Sequence[str]) -> npt.NDArray[np.float32]:
        """Stored embeddings of known items (unknown ids raise KeyError)."""
        ...

    def ids(self) -> list[str]: ...
