"""Per-user emotion state: valence, arousal and an Ekman distribution that fade with event time.

Each source (review, chat, click) keeps its own decayed sums because its evidence fades at its own
rate: a chat says how the user feels this hour, a review how they felt about a purchase this week.
The state reported (``valence``, ``arousal``, ``ekman``) is the evidence-weighted mean over the
sources. Keeping sums rather than means makes the fold exact under decay and independent of the
order in which events arrive (late events are decayed to the state's time, never the reverse).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from stream.core import labels as emotions_maths
from stream.core.decay import align, decay_factor
from stream.ports import EKMAN

SOURCES: tuple[str, ...] = ("review", "chat", "click")
NEUTRAL = EKMAN.index("neutral")
_WIDTH = 3 + len(EKMAN)  # weight, Σw·valence, Σw·arousal, Σw·ekman[7]


@dataclass(frozen=True)
class HalfLives:
    """Emotion half-lives per source in seconds (Settings.half_life_{review,chat,click}_s)."""

    review_s: float = 7 * 86400.0
    chat_s: float = 3600.0
    click_s: float = 1800.0

    @classmethod
    def from_settings(cls, settings: Any) -> HalfLives:
        """Read the three ``half_life_*_s`` fields of a Settings-like object (duck-typed)."""
        return cls(
            review_s=float(settings.half_life_review_s),
            chat_s=float(settings.half_life_chat_s),
            click_s=float(settings.half_life_click_s),
        )

    def of(self, source: str) -> float:
        return {"review": self.review_s, "chat": self.chat_s, "click": self.click_s}[source]

    def as_tuple(self) -> tuple[float, ...]:
        return tuple(self.of(s) for s in SOURCES)


def normalise_ekman(values: Sequence[float]) -> tuple[float, ...]:
    """A proper 7-way distribution; an all-zero or invalid input means neutral."""
    if len(values) != len(EKMAN):
        raise ValueError(f"ekman needs {len(EKMAN)} values in {EKMAN} order, got {len(values)}")
    clean = [v if math.isfinite(v) and v > 0 else 0.0 for v in (float(x) for x in values)]
    total = sum(clean)
    if total <= 0:
        return tuple(1.0 if i == NEUTRAL else 0.0 for i in range(len(EKMAN)))
    return tuple(v / total for v in clean)


def ekman_from_emotions(probs: Sequence[float]) -> tuple[float, ...]:
    """7-way Ekman distribution of one row of the 28 GoEmotions probabilities.

    Delegates to ``stream.core.labels`` so the model adapter, the CLI and the state share one
    grouping.
    """
    return normalise_ekman([float(x) for x in emotions_maths.ekman(np.asarray(probs))[0]])


def arousal_from_emotions(probs: Sequence[float]) -> float:
    """Arousal in [0, 1] of one row of emotion probabilities (``stream.core.labels.arousal``)."""
    return float(emotions_maths.arousal(np.asarray(probs))[0])


@dataclass(frozen=True)
class EmotionObs:
    """One piece of emotional evidence. Values are clipped and the distribution normalised."""

    valence: float  # -1 (negative) .. 1 (positive)
    arousal: float  # 0 .. 1
    ekman: tuple[float, ...]  # 7 values in stream.ports.EKMAN order
    source: str  # review | chat | click
    ts: int  # epoch ms, event time
    confidence: float = 1.0  # evidence weight of this observation, >= 0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown emotion source {self.source!r}; expected one of {SOURCES}")
        for name in ("valence", "arousal", "confidence"):
            if not math.isfinite(getattr(self, name)):
                raise ValueError(f"{name} must be finite")
        object.__setattr__(self, "valence", min(max(float(self.valence), -1.0), 1.0))
        object.__setattr__(self, "arousal", min(max(float(self.arousal), 0.0), 1.0))
        object.__setattr__(self, "confidence", max(float(self.confidence), 0.0))
        object.__setattr__(self, "ekman", normalise_ekman(self.ekman))


def _zeros() -> tuple[float, ...]:
    return (0.0,) * (_WIDTH * len(SOURCES))


@dataclass(frozen=True)
class EmotionSummary:
    """What the recommendations topic carries about the user's mood."""

    valence: float
    arousal: float
    dominant: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "valence": round(self.valence, 4),
            "arousal": round(self.arousal, 4),
            "dominant": self.dominant,
            "weight": round(self.weight, 4),
        }


@dataclass(frozen=True)
class EmotionState:
    """Decayed sums per source, flattened: for each source in SOURCES order, ``_WIDTH`` floats."""

    sums: tuple[float, ...] = field(default_factory=_zeros)
    updated_at: int | None = None

    @cached_property
    def _totals(self) -> tuple[float, ...]:
        """Sums over the sources, computed once: ranking reads the mood many times."""
        parts = [self.sums[i * _WIDTH : (i + 1) * _WIDTH] for i in range(len(SOURCES))]
        return tuple(map(sum, zip(*parts, strict=True)))

    @property
    def weight(self) -> float:
        """Total evidence left after decay (0 for a user we know nothing about)."""
        return self._totals[0]

    def _mean(self, offset: int) -> float:
        w = self.weight
        if w <= 0:
            return 0.0
        return self._totals[offset] / w

    @property
    def valence(self) -> float:
        return self._mean(1)

    @property
    def arousal(self) -> float:
        return self._mean(2)

    @cached_property
    def ekman(self) -> tuple[float, ...]:
        if self.weight <= 0:
            return normalise_ekman((0.0,) * len(EKMAN))
        return normalise_ekman([self._mean(3 + k) for k in range(len(EKMAN))])

    @property
    def dominant(self) -> str:
        dist = self.ekman
        return EKMAN[max(range(len(dist)), key=dist.__getitem__)]

    def summary(self) -> EmotionSummary:
        return EmotionSummary(self.valence, self.arousal, self.dominant, self.weight)

    def to_dict(self) -> dict[str, Any]:
        """Lossless and compact: the 30 sums as base64 float64 (about 320 characters)."""
        raw = np.asarray(self.sums, dtype="<f8").tobytes()
        return {"sums": base64.b64encode(raw).decode("ascii"), "at": self.updated_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EmotionState:
        sums = np.frombuffer(base64.b64decode(data["sums"]), dtype="<f8")
        if sums.size != _WIDTH * len(SOURCES):
            raise ValueError(f"emotion state has {sums.size} sums, expected {_WIDTH * 3}")
        at = data.get("at")
        return cls(tuple(float(x) for x in sums), None if at is None else int(at))


def emotion_at(state: EmotionState, ts: int, half_lives: HalfLives) -> EmotionState:
    """The state as it stands at ``ts`` (later than ``updated_at``): each source faded by its rate.

    Call this before ranking so that an hour-old chat weighs what it should now.
    """
    if state.updated_at is None or ts <= state.updated_at:
        return state
    sums: list[float] = []
    for i, hl in enumerate(half_lives.as_tuple()):
        f = decay_factor(ts - state.updated_at, hl)
        sums.extend([v * f for v in state.sums[i * _WIDTH : (i + 1) * _WIDTH]])
    return EmotionState(tuple(sums), ts)


def fold_emotion(
    state: EmotionState, obs: EmotionObs, half_lives: HalfLives
) -> tuple[EmotionState, EmotionSummary]:
    """Fold one observation in; emits the resulting summary."""
    src = SOURCES.index(obs.source)
    hls = half_lives.as_tuple()
    new_at = state.updated_at
    sums = list(state.sums)
    if state.updated_at is not None and obs.ts > state.updated_at:
        for i in range(len(sums)):
            sums[i] *= decay_factor(obs.ts - state.updated_at, hls[i // _WIDTH])
    _, obs_factor, new_at = align(state.updated_at, obs.ts, hls[src])
    w = obs.confidence * obs_factor
    base = src * _WIDTH
    sums[base] += w
    sums[base + 1] += w * obs.valence
    sums[base + 2] += w * obs.arousal
    for k, p in enumerate(obs.ekman):
        sums[base + 3 + k] += w * p
    new = EmotionState(tuple(sums), new_at)
    return new, new.summary()
