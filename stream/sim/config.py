"""What to simulate: the kind mix and ``SimConfig``, checked when built."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from stream.errors import ConfigError
from stream.sim.common import CATEGORIES, DEFAULT_RATE, DEFAULT_START_MS, KINDS, MAX_TS


@dataclass(frozen=True)
class Mix:
    """Shares of the event kinds; normalised, so ``clicks=6,chats=3,reviews=1`` works too."""

    clicks: float = 0.6
    chats: float = 0.25
    reviews: float = 0.15

    def __post_init__(self) -> None:
        values = (self.clicks, self.chats, self.reviews)
        if any(not math.isfinite(v) or v < 0 for v in values):
            raise ConfigError(
                "mix shares must be finite and >= 0, got "
                f"clicks={self.clicks:g},chats={self.chats:g},reviews={self.reviews:g}"
            )
        if sum(values) <= 0:
            raise ConfigError("mix shares sum to 0: give at least one kind a positive share")

    def shares(self) -> dict[str, float]:
        total = self.clicks + self.chats + self.reviews
        return {kind: getattr(self, kind) / total for kind in KINDS}

    def __str__(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in self.shares().items())


def parse_mix(text: str) -> Mix:
    """``clicks=0.6,chats=0.25,reviews=0.15`` -> ``Mix``; missing kinds get 0."""
    values: dict[str, float] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, number = part.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--mix part {part!r} is not kind=share (e.g. clicks=0.6)")
        if name not in KINDS:
            raise ConfigError(f"--mix kind {name!r} is not one of {', '.join(KINDS)}")
        if name in values:
            raise ConfigError(f"--mix gives {name} twice")
        try:
            values[name] = float(number)
        except ValueError:
            raise ConfigError(f"--mix share {number.strip()!r} of {name} is not a number") from None
    if not values:
        raise ConfigError("--mix is empty: use e.g. clicks=0.6,chats=0.25,reviews=0.15")
    return Mix(**{kind: values.get(kind, 0.0) for kind in KINDS})


@dataclass(frozen=True)
class SimConfig:
    """What to simulate. ``n_events`` and ``duration_s`` both None = an endless stream."""

    seed: int = 0
    n_users: int = 200
    n_items: int = 500
    n_events: int | None = 10_000
    duration_s: float | None = None  # of simulated time
    rate: float = DEFAULT_RATE  # events per simulated second (Poisson arrivals)
    mix: Mix = field(default_factory=Mix)
    start_ms: int = DEFAULT_START_MS
    bad_rate: float = 0.0  # chance of a bad value after each event, in ``messages()`` only
    id_prefix: str | None = None  # event/session id prefix; None = ``sim<seed>-``
    taste_concentration: float = 0.3  # Dirichlet alpha: small = few liked categories
    zipf_s: float = 0.9  # popularity exponent over the random item ranks

    def __post_init__(self) -> None:
        if self.n_users < 1:
            raise ConfigError(f"users must be >= 1, got {self.n_users}")
        if self.n_items < len(CATEGORIES):
            raise ConfigError(f"items must be >= {len(CATEGORIES)} (one per category)")
        if self.n_events is not None and self.n_events < 0:
            raise ConfigError(f"events must be >= 0, got {self.n_events}")
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"duration must be > 0 seconds, got {self.duration_s}")
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ConfigError(f"simulated rate must be > 0 events/s, got {self.rate}")
        if not 0 <= self.start_ms < MAX_TS:
            raise ConfigError(f"start must be epoch ms in [0, {MAX_TS}), got {self.start_ms}")
        if not 0.0 <= self.bad_rate < 1.0:
            raise ConfigError(f"bad rate must be in [0, 1), got {self.bad_rate}")
        if not self.taste_concentration > 0:
            raise ConfigError("taste concentration must be > 0")
        if self.id_prefix is not None and any(ord(ch) < 0x20 for ch in self.id_prefix):
            raise ConfigError("id prefix must not contain control characters")

    @property
    def prefix(self) -> str:
        return f"sim{self.seed}-" if self.id_prefix is None else self.id_prefix
