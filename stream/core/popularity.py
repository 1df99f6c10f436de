"""Per-item popularity: decayed interaction counts, for cold users and for filling short lists."""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stream.core.decay import align, decay_factor


@dataclass(frozen=True)
class PopularityWeights:
    """Interaction weight per event kind: what counts as 'popular' (tuned by the backtest)."""

    review: float = 1.0
    purchase: float = 1.0
    add_to_cart: float = 0.5
    click: float = 0.2
    view: float = 0.05
    skip: float = 0.0
    chat: float = 0.5  # a chat message about the item

    def of(self, kind: str) -> float:
        """Weight of an event kind: ``review`` or a click action (unknown kinds count 0)."""
        return float(getattr(self, kind, 0.0)) if kind in _KINDS else 0.0


_KINDS = frozenset({"review", "purchase", "add_to_cart", "click", "view", "skip", "chat"})


@dataclass(frozen=True)
class PopObs:
    ts: int
    weight: float = 1.0


@dataclass(frozen=True)
class Popularity:
    score: float = 0.0  # decayed Σ weight at updated_at
    count: int = 0  # interactions ever (not decayed)
    updated_at: int | None = None

    def at(self, ts: int, half_life_s: float) -> float:
        """Score decayed to ``ts``; comparable across items only when taken at the same ts."""
        if self.updated_at is None:
            return 0.0
        return self.score * decay_factor(ts - self.updated_at, half_life_s)

    def to_dict(self) -> dict[str, Any]:
        return {"s": self.score, "n": self.count, "at": self.updated_at}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Popularity:
        at = data.get("at")
        return cls(float(data["s"]), int(data["n"]), None if at is None else int(at))


def fold_popularity(state: Popularity, obs: PopObs, half_life_s: float) -> tuple[Popularity, float]:
    """Count one interaction; emits the new score."""
    if not math.isfinite(obs.weight) or obs.weight <= 0:
        return state, state.score
    state_f, obs_f, at = align(state.updated_at, obs.ts, half_life_s)
    new = Popularity(state.score * state_f + obs.weight * obs_f, state.count + 1, at)
    return new, new.score


def top_popular(
    states: Mapping[str, Popularity] | Iterable[tuple[str, Popularity]],
    n: int,
    now_ms: int,
    half_life_s: float,
    exclude: Collection[str] = (),
) -> list[tuple[str, float]]:
    """The n most popular items at ``now_ms`` as (item_id, score), best first, ties by id."""
    pairs = states.items() if isinstance(states, Mapping) else states
    scored = (
        (pop.at(now_ms, half_life_s), item_id)
        for item_id, pop in pairs
        if item_id not in exclude and pop.updated_at is not None
    )
    best = heapq.nsmallest(n, scored, key=lambda p: (-p[0], p[1]))
    return [(item_id, score) for score, item_id in best if score > 0]
