"""Per-user taste vector: a decayed sum of item embeddings weighted by signed evidence.

Buying or praising an item pulls the vector toward it, a negative review pushes it away, a skip
pushes weakly, and views/clicks pull weakly in proportion to dwell time. The FAISS query is the
normalised vector, so only its direction matters; ``weight`` (decayed sum of |evidence|) says how
much we know. The vector is kept in float32 so that the in-memory state and the stored one
(base64 float32) are the same bits: the worker and the replay fold to identical states.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core.decay import align

ACTIONS: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "skip")
_EPS = 1e-6


@dataclass(frozen=True)
class EvidenceWeights:
    """How strongly each kind of event moves taste (tuned by the backtest)."""

    purchase: float = 1.0
    add_to_cart: float = 0.5
    click: float = 0.3  # scaled by dwell
    view: float = 0.1  # scaled by dwell
    skip: float = -0.2
    dwell_half_ms: float = 15_000.0  # dwell at which a click/view counts half its full weight
    review_interest: float = 0.3  # reviewing an item at all says the user chose that kind of item
    review_gain: float = 0.5  # how far review sentiment moves evidence (sign included)
    rating_share: float = 0.7  # share of an explicit star rating in review sentiment
    chat_gain: float = 0.3  # a chat about an item is a weaker review of it
    chat_interest: float = 0.0  # talking about an item at all pulls taste toward it this much
    # Added to a review text's model valence before anything folds it (taste, mood, item affect,
    # engagements): the model, trained on movie sentences, reads product reviews as more
    # negative than their stars say. A calibration to the platform, fitted by the backtest's
    # tuning on the early part of the timeline (Musical Instruments: 0.75, the default here);
    # 0 leaves the model's valence as it is.
    review_valence_shift: float = 0.75


def click_evidence(action: str, dwell_ms: float, w: EvidenceWeights) -> float:
    """Signed evidence of a click-stream action; unknown actions raise ValueError."""
    if action == "purchase":
        return w.purchase
    if action == "add_to_cart":
        return w.add_to_cart
    if action == "skip":
        return w.skip
    if action in ("click", "view"):
        dwell = max(float(dwell_ms), 0.0) if math.isfinite(dwell_ms) else 0.0
        share = dwell / (dwell + w.dwell_half_ms) if w.dwell_half_ms > 0 else 1.0
        return (w.click if action == "click" else w.view) * share
    raise ValueError(f"unknown action {action!r}; expected one of {ACTIONS}")


def review_valence(valence: float, confidence: float, w: EvidenceWeights) -> float:
    """A review text's model valence, calibrated to the platform (``review_valence_shift``),
    in [-1, 1]. A text the model did not read (confidence 0: an empty review) has no valence to
    calibrate and keeps 0."""
    if not w.review_valence_shift or confidence <= 0:
        return valence
    return min(max(valence + w.review_valence_shift, -1.0), 1.0)


def review_sentiment(valence: float, rating: float | None, w: EvidenceWeights) -> float:
    """Sentiment in [-1, 1]: the text's valence blended with the star rating when there is one."""
    v = min(max(float(valence), -1.0), 1.0)
    if rating is None:
        return v
    stars = min(max((float(rating) - 3.0) / 2.0, -1.0), 1.0)
    return w.rating_share * stars + (1.0 - w.rating_share) * v


def review_evidence(valence: float, rating: float | None, w: EvidenceWeights) -> float:
    """Signed evidence of a review: interest in the item plus its sentiment.

    With the defaults a 1-star review gives -0.2 (push away), a 5-star one +0.8 (pull).
    """
    return w.review_interest + w.review_gain * review_sentiment(valence, rating, w)


@dataclass(frozen=True, eq=False)
class TasteState:
    """``vector`` is None until the first item with a known embedding is folded in.

    ``weight`` is the decayed sum of |evidence|, ``pull`` that of positive evidence only: a user
    who has only skipped or panned items has no direction worth searching along yet.
    """

    vector: npt.NDArray[np.float32] | None = None
    weight: float = 0.0
    pull: float = 0.0
    updated_at: int | None = None

    def __post_init__(self) -> None:
        if self.vector is not None:
            vec = np.array(self.vector, dtype=np.float32).reshape(-1)
            vec.flags.writeable = False
            object.__setattr__(self, "vector", vec)

    def query(self) -> npt.NDArray[np.float32] | None:
        """Unit-length query for the index, or None for a cold user (no usable direction).
        Computed once (read-only): one recommendation asks for it four times."""
        if "_query" in self.__dict__:
            return self.__dict__["_query"]
        query = None
        if self.vector is not None and self.pull > _EPS:
            norm = float(np.linalg.norm(self.vector))
            if norm >= _EPS:
                query = (self.vector / norm).astype(np.float32)
                query.flags.writeable = False
        self.__dict__["_query"] = query
        return query

    def to_dict(self) -> dict[str, Any]:
        vec = None
        if self.vector is not None:
            vec = base64.b64encode(self.vector.astype("<f4").tobytes()).decode("ascii")
        return {"vec": vec, "w": self.weight, "pull": self.pull, "at": self.updated_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TasteState:
        raw = data.get("vec")
        vec = None if raw is None else np.frombuffer(base64.b64decode(raw), dtype="<f4")
        at = data.get("at")
        weight, pull = float(data.get("w", 0.0)), float(data.get("pull", 0.0))
        return cls(vec, weight, pull, None if at is None else int(at))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TasteState):
            return NotImplemented
        same_vec = (self.vector is None and other.vector is None) or (
            self.vector is not None
            and other.vector is not None
            and np.array_equal(self.vector, other.vector)
        )
        return (
            same_vec
            and self.weight == other.weight
            and self.pull == other.pull
            and self.updated_at == other.updated_at
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class TasteObs:
    item_vector: npt.NDArray[np.float32]
    evidence: float
    ts: int


def fold_taste(state: TasteState, obs: TasteObs, half_life_s: float) -> tuple[TasteState, bool]:
    """Add ``evidence * item_vector`` after decaying; emits whether the vector changed.

    An item vector of another dimension than the taste restarts the taste from this event.
    """
    if obs.evidence == 0 or not math.isfinite(obs.evidence):
        return state, False
    item = np.asarray(obs.item_vector, dtype=np.float64).reshape(-1)
    if state.vector is not None and state.vector.shape != item.shape:
        # The item space changed under us (a new model's index): the old taste means nothing
        # there, so start again from this event rather than fail the user's partition.
        state = TasteState()
    state_f, obs_f, at = align(state.updated_at, obs.ts, half_life_s)
    current = np.zeros_like(item) if state.vector is None else state.vector.astype(np.float64)
    vec = current * state_f + (obs.evidence * obs_f) * item
    weight = state.weight * state_f + abs(obs.evidence) * obs_f
    pull = state.pull * state_f + max(obs.evidence, 0.0) * obs_f
    return TasteState(vec.astype(np.float32), weight, pull, at), True
