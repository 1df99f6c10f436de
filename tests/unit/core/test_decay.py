from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from stream.core.decay import align, decay_factor

ms = st.integers(min_value=0, max_value=10**11)
half_life = st.floats(min_value=1.0, max_value=1e8)


def test_one_half_life_halves() -> None:
    assert decay_factor(3_600_000, 3600.0) == 0.5
    assert decay_factor(0, 3600.0) == 1.0
    assert decay_factor(-5, 3600.0) == 1.0  # a late event never grows state
    assert decay_factor(1, 0.0) == 0.0
    assert decay_factor(10**12, math.inf) == 1.0


@given(ms, ms, half_life)
def test_decay_is_monotone_in_time(a: int, b: int, hl: float) -> None:
    lo, hi = sorted((a, b))
    assert 0.0 <= decay_factor(hi, hl) <= decay_factor(lo, hl) <= 1.0


@given(ms, ms, half_life)
def test_two_steps_equal_one(a: int, b: int, hl: float) -> None:
    assert math.isclose(
        decay_factor(a, hl) * decay_factor(b, hl),
        decay_factor(a + b, hl),
        rel_tol=1e-9,
        abs_tol=1e-300,
    )


def test_align_decays_the_older_side() -> None:
    assert align(None, 5, 1.0) == (1.0, 1.0, 5)
    assert align(0, 1000, 1.0) == (0.5, 1.0, 1000)
    assert align(1000, 0, 1.0) == (1.0, 0.5, 1000)  # late observation decays, state keeps its time
