"""Exponential decay in event time: the one forgetting rule every state here shares.

All times are epoch milliseconds taken from the events, never the wall clock, so a replay of the
same topic range folds to the same state as the live worker did.
"""

from __future__ import annotations

import math


def decay_factor(elapsed_ms: float, half_life_s: float) -> float:
    """Weight left after ``elapsed_ms`` for evidence with the given half-life.

    Negative elapsed time (a late event) counts as zero: state never grows by going back in time.
    A non-positive half-life forgets immediately; an infinite one never forgets.
    """
    if elapsed_ms <= 0:
        return 1.0
    if half_life_s <= 0:
        return 0.0
    if math.isinf(half_life_s):
        return 1.0
    return 0.5 ** (elapsed_ms / (1000.0 * half_life_s))


def align(updated_at: int | None, ts: int, half_life_s: float) -> tuple[float, float, int]:
    """Factors that bring a state and a new observation to a common time.

    Returns ``(state_factor, obs_factor, new_updated_at)``. An observation older than the state
    (out-of-order delivery) is decayed to the state's time instead of rewinding the state, so the
    fold result does not depend on arrival order.
    """
    if updated_at is None:
        return 1.0, 1.0, ts
    if ts >= updated_at:
        return decay_factor(ts - updated_at, half_life_s), 1.0, ts
    return 1.0, decay_factor(updated_at - ts, half_life_s), updated_at
