"""stream.offline.backtest.protocol."""

from __future__ import annotations

import calendar

import pytest

from stream.errors import ConfigError
from stream.offline import backtest as bt
from tests.unit.offline.backtest.helpers import (
    DAY,
    T0,
)


def test_rebuild_times() -> None:
    first = calendar.timegm((2013, 1, 15, 12, 0, 0)) * 1000
    last = calendar.timegm((2013, 4, 1, 0, 0, 0)) * 1000
    months = [calendar.timegm((2013, m, 1, 0, 0, 0)) * 1000 for m in (2, 3, 4)]
    assert bt.rebuild_times(first, last, "monthly") == months
    assert bt.rebuild_times(first, last, "quarterly") == [months[-1]]
    assert bt.rebuild_times(first, first + 20 * DAY, "weekly") == [
        first + 7 * DAY,
        first + 14 * DAY,
    ]
    assert bt.rebuild_times(first, last, "30d") == [first + 30 * DAY, first + 60 * DAY]
    assert bt.rebuild_times(first, last, "once") == [first]
    with pytest.raises(ConfigError):
        bt.rebuild_times(first, last, "hourly")


def test_warmup_forms() -> None:
    ts = [T0 + i * DAY for i in range(10)]
    assert bt.warmup_time("0", ts) == T0
    assert bt.warmup_time("50%", ts) == T0 + 5 * DAY
    assert bt.warmup_time("3d", ts) == T0 + 3 * DAY
    assert bt.warmup_time("2013-01-05", ts) == T0 + 4 * DAY
    for bad in ("100%", "x%", "yesterday"):
        with pytest.raises(ConfigError):
            bt.warmup_time(bad, ts)
