"""Seeded users: each likes a few categories."""

from __future__ import annotations

import math
import statistics

from stream.sim.simulate import (
    make_users,
)


def test_users_like_few_categories() -> None:
    users = make_users(0, 300)
    assert all(math.isclose(sum(u.taste), 1.0) for u in users)
    top2 = [sum(sorted(u.taste, reverse=True)[:2]) for u in users]
    assert statistics.median(top2) > 0.7
    assert len({u.user_id for u in users}) == 300
