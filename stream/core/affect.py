"""Per-item affect: the decayed, evidence-weighted mean sentiment of the item's reviews.

The mean is shrunk toward neutral (0) by a prior weight, so an item with one glowing review does
not outrank one with forty good ones; ``confidence`` says how far the mean can be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stream.core.decay import align, decay_factor


@dataclass(frozen=True)
class AffectObs:
    valence: float  # -1 .. 1, the review's sentiment
    ts: int  # epoch ms
    weight: float = 1.0  # evidence of this review (e.g. model confidence)


@dataclass(frozen=True)
class ItemAffect:
    total: float = 0.0  # decayed Σ weight·valence
    weight: float = 0.0  # decayed Σ weight
    count: int = 0  # reviews ever folded in (not decayed), for reports
    updated_at: int | None = None

    def mean(self, prior: float = 0.0) -> float:
        """Sentiment in [-1, 1], shrunk toward 0 by ``prior`` pseudo-reviews of neutral valence."""
        denom = self.weight + max(prior, 0.0)
        return 0.0 if denom <= 0 else self.total / denom

    def confidence(self, prior: float = 1.0) -> float:
        """0 for an unreviewed item, approaching 1 as evidence outweighs the prior."""
        denom = self.weight + max(prior, 0.0)
        return 0.0 if denom <= 0 else self.weight / denom

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.total, "w": self.weight, "n": self.count, "at": self.updated_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemAffect:
        at = data.get("at")
        when = None if at is None else int(at)
        return cls(float(data["t"]), float(data["w"]), int(data["n"]), when)


def affect_at(state: ItemAffect, ts: int, half_life_s: float) -> ItemAffect:
    """The state decayed to ``ts``; the unshrunk mean does not move, its confidence does."""
    if state.updated_at is None or ts <= state.updated_at:
        return state
    f = decay_factor(ts - state.updated_at, half_life_s)
    return ItemAffect(state.total * f, state.weight * f, state.count, ts)


def fold_affect(state: ItemAffect, obs: AffectObs, half_life_s: float) -> tuple[ItemAffect, float]:
    """Fold one review's sentiment in; emits the new (unshrunk) mean."""
    if not (math.isfinite(obs.valence) and math.isfinite(obs.weight)) or obs.weight <= 0:
        return state, state.mean()
    valence = min(max(obs.valence, -1.0), 1.0)
    state_f, obs_f, at = align(state.updated_at, obs.ts, half_life_s)
    w = obs.weight * obs_f
    new = ItemAffect(
        state.total * state_f + w * valence, state.weight * state_f + w, state.count + 1, at
    )
    return new, new.mean()
