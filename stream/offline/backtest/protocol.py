"""The time protocol: what is tested when, index rebuild times, the warm-up."""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from stream.errors import ConfigError
from stream.offline.times import parse_when

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Protocol:
    k: int = 10
    depth: int = 100  # length of the ranked list MRR is computed over
    rebuild: str = "monthly"
    warmup: str = "10%"
    tune: bool = True
    tune_share: float = 0.6
    resamples: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= self.depth:
            raise ConfigError("need 1 <= k <= depth")
        if not 0.0 < self.tune_share < 1.0:
            raise ConfigError("tune share must be between 0 and 1")
        if self.resamples < 1:
            raise ConfigError("resamples must be >= 1")
        rebuild_times(0, 0, self.rebuild)  # fail on a bad spec before any work is done
        warmup_time(self.warmup, [0, 1])


def month_start(ms: int, months_ahead: int) -> int:
    day = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    month = day.month - 1 + months_ahead
    year, month = day.year + month // 12, month % 12 + 1
    return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000


def rebuild_times(first_ms: int, last_ms: int, cadence: str) -> list[int]:
    """Index rebuild times after ``first_ms`` up to ``last_ms`` (inclusive).

    ``monthly``/``quarterly``/``yearly``: the first of each (UTC) calendar period; ``weekly`` or
    ``<N>d``: every N days from the first event; ``once``: a single build at ``first_ms`` (the
    caller passes the warm-up time), so items first reviewed later never enter the index.
    """
    spec = cadence.strip().lower()
    if spec == "once":
        return [first_ms]
    months = {"monthly": 1, "quarterly": 3, "yearly": 12}.get(spec)
    if months is not None:
        day = dt.datetime.fromtimestamp(first_ms / 1000, dt.UTC)
        back = (day.month - 1) % months  # months since the start of the period holding first_ms
        out, t = [], month_start(first_ms, months - back)
        while t <= last_ms:
            out.append(t)
            t = month_start(t, months)
        return out
    days = 7 if spec == "weekly" else None
    match = re.fullmatch(r"(\d+)d", spec)
    if match:
        days = int(match.group(1))
    if not days:
        raise ConfigError(
            f"--rebuild {cadence!r}: use monthly, quarterly, yearly, weekly, <N>d or once"
        )
    return list(range(first_ms + days * DAY_MS, last_ms + 1, days * DAY_MS))


def warmup_time(spec: str, ts: Sequence[int]) -> int:
    """Earliest time a test point may have: ``N%`` of the events, ``Nd`` after the first, a date.

    ``0`` means no global warm-up (a user's first review still never is a test point).
    """
    value = spec.strip()
    if not ts:
        return 0
    if value in ("0", "0%", "0d"):
        return ts[0]
    if value.endswith("%"):
        try:
            share = float(value[:-1]) / 100.0
        except ValueError:
            raise ConfigError(f"--warmup {spec!r}: not a percentage") from None
        if not 0.0 <= share < 1.0:
            raise ConfigError(f"--warmup {spec!r}: must be below 100%")
        return ts[min(int(share * len(ts)), len(ts) - 1)]
    match = re.fullmatch(r"(\d+(?:\.\d+)?)d", value)
    if match:
        return ts[0] + int(float(match.group(1)) * DAY_MS)
    return parse_when(value)


def iso_day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")
