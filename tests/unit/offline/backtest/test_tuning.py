"""stream.offline.backtest.tuning."""

from __future__ import annotations

from stream.offline import backtest as bt
from tests.unit.offline.backtest.helpers import (
    FAST,
    SETTINGS,
    synthetic_reviews,
    timeline,
)


def test_tuning_picks_from_the_grid_on_the_early_points_only() -> None:
    events = synthetic_reviews()
    tl = timeline(events, FAST)
    split = bt.split_time(tl, 0.6)
    assert split is not None
    result = bt.tune(tl, SETTINGS, FAST, split)
    assert result.points == int((tl.test & (tl.ts < split)).sum())
    for name, value in {**result.evidence, **result.rank}.items():
        assert value in {**bt.EVIDENCE_AXES, **bt.RANK_AXES}[name]
    assert result.score >= result.default_score
    defaults = {k: v[0] for k, v in {**bt.EVIDENCE_AXES, **bt.RANK_AXES}.items()}
    assert result.trials[0] == (defaults, result.default_score)
    # The pick is a tried setting; any better one beat it by less than the noise margin.
    assert result.score in [s for _, s in result.trials]
    assert max(s for _, s in result.trials) <= result.score * (1 + bt.MIN_GAIN)
    tried = [tuple(sorted(p.items())) for p, _ in result.trials]
    assert len(tried) == len(set(tried))  # each setting is simulated once
