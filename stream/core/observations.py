"""The three small event types the user and item folds take: ``ReviewObs``, ``ChatObs`` and
``ClickObs``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.core.taste import ACTIONS

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class ReviewObs:
    """A scored review. ``item_vector`` is the item's index embedding (None: unknown item)."""

    user_id: str
    item_id: str
    valence: float  # model valence, -1 .. 1 (Scores.valence)
    ekman: tuple[float, ...]  # 7-way distribution, EKMAN order (emotion.ekman_from_emotions)
    arousal: float  # 0 .. 1 (emotion.arousal_from_ekman)
    rating: float | None  # 1-5 stars when the platform sent them
    ts: int  # epoch ms
    item_vector: Vector | None = None
    confidence: float = 1.0


@dataclass(frozen=True, eq=False)
class ChatObs:
    """A scored chat message, optionally about an item (then a weak review of it)."""

    user_id: str
    valence: float
    ekman: tuple[float, ...]
    arousal: float
    ts: int
    item_id: str | None = None
    item_vector: Vector | None = None
    confidence: float = 1.0


@dataclass(frozen=True, eq=False)
class ClickObs:
    """A click-stream action: view, click, add_to_cart, purchase or skip."""

    user_id: str
    item_id: str
    action: str
    dwell_ms: int
    ts: int
    item_vector: Vector | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; expected one of {ACTIONS}")


UserEvent = ReviewObs | ChatObs | ClickObs
