"""stream.offline.backtest.timeline."""

from __future__ import annotations

from tests.unit.offline.backtest.helpers import (
    DAY,
    FAST,
    T0,
    synthetic_reviews,
    timeline,
)


def test_test_points_are_later_reviews_after_the_warmup() -> None:
    events = synthetic_reviews()
    tl = timeline(events, FAST)
    first: dict[str, int] = {}
    for i, e in enumerate(events):
        first.setdefault(e.user_id, e.ts)
        expected = e.ts > first[e.user_id] and e.ts >= T0 + 30 * DAY
        assert tl.test[i] == expected
    assert 0 < tl.test.sum() < len(events)
