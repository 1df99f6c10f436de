"""Seeded users with hidden tastes and moods, and what a run remembers about each."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from stream.errors import ConfigError
from stream.sim.common import CATEGORIES, clip, id_width, rng_for


@dataclass(frozen=True)
class User:
    """A user's hidden traits; ``taste`` is a distribution over ``CATEGORIES``."""

    user_id: str
    taste: tuple[float, ...]
    quality_sensitivity: float  # 0: any item of a liked category pleases, 1: only good ones
    activity: float  # relative share of the event stream
    base_valence: float  # the mood the random walk reverts to
    volatility: float  # step size of the mood walk
    anger_prone: float  # chance a bad mood comes out as anger rather than sadness

    def top_categories(self, n: int = 2) -> list[str]:
        order = sorted(range(len(self.taste)), key=lambda i: (-self.taste[i], i))
        return [CATEGORIES[i] for i in order[:n]]


def make_users(seed: int, n_users: int = 200, *, concentration: float = 0.3) -> list[User]:
    """Users whose taste is Dirichlet(``concentration``) over categories: a few liked ones each."""
    if n_users < 1:
        raise ConfigError(f"users must be >= 1, got {n_users}")
    rng = rng_for(seed, "users")
    width = id_width(n_users)
    users = []
    for number in range(1, n_users + 1):
        draws = [rng.gammavariate(concentration, 1.0) for _ in CATEGORIES]
        total = sum(draws)
        if total <= 0:  # every draw underflowed: fall back to one liked category
            draws = [0.0] * len(CATEGORIES)
            draws[rng.randrange(len(CATEGORIES))] = total = 1.0
        users.append(
            User(
                user_id=f"u{number:0{width}d}",
                taste=tuple(d / total for d in draws),
                quality_sensitivity=rng.betavariate(2.0, 2.0),
                activity=rng.lognormvariate(0.0, 0.7),
                base_valence=clip(rng.gauss(0.1, 0.2), -0.6, 0.7),
                volatility=rng.uniform(0.04, 0.12),
                anger_prone=rng.random(),
            )
        )
    return users


@dataclass
class UserState:
    """What the simulation remembers about a user while it runs (and reports in the truth)."""

    valence: float
    spell: dict[str, Any] | None = None
    spell_left: int = 0
    focus: tuple[int, int] | None = None  # (item index, funnel stage 0..2)
    pending: deque[int] = field(default_factory=deque)  # bought in-stream, not reviewed yet
    session: str | None = None
    n_sessions: int = 0
    last_chat_ts: int = 0
    events: int = 0
    valence_sum: float = 0.0
    valence_min: float = 1.0
    valence_max: float = -1.0
    moods: Counter[str] = field(default_factory=Counter)
    spells: list[dict[str, Any]] = field(default_factory=list)
    purchases: list[str] = field(default_factory=list)
    reviewed: list[str] = field(default_factory=list)
