"""stream.offline.backtest.simulate."""

from __future__ import annotations

import pytest

from stream.core.taste import EvidenceWeights
from stream.offline import backtest as bt
from tests.unit.offline.backtest.helpers import (
    DAY,
    FAST,
    FUTURE,
    SETTINGS,
    T0,
    synthetic_reviews,
    timeline,
)


def test_a_future_item_is_never_recommended_before_it_is_indexed() -> None:
    events = synthetic_reviews()
    first_ts = min(e.ts for e in events if e.item_id == FUTURE)
    protocol = bt.Protocol(k=20, depth=20, warmup="0", rebuild="monthly")
    tl = timeline(events, protocol)
    indexed_from = min(t for t in tl.rebuilds if t > first_ts)  # built from reviews before it
    point_ts = tl.ts[tl.test]
    seen_later = False
    for name, variant in bt.VARIANTS.items():
        (res,) = bt.simulate(tl, variant, bt.Params(), SETTINGS, protocol)
        for ts, top in zip(point_ts, res.top, strict=True):
            if ts < indexed_from:
                assert FUTURE not in top, f"{name} recommended {FUTURE} before it existed"
            seen_later |= FUTURE in top
    assert seen_later  # it is recommendable once indexed: the check above can fail


def test_results_before_a_time_do_not_depend_on_the_data_after_it() -> None:
    events = synthetic_reviews()
    cut = T0 + 200 * DAY
    protocol = bt.Protocol(k=10, depth=20, warmup="30d")
    full, head = timeline(events, protocol), timeline([e for e in events if e.ts < cut], protocol)
    n_head = int(head.test.sum())
    assert n_head > 20
    for variant in bt.VARIANTS.values():
        (a,) = bt.simulate(full, variant, bt.Params(), SETTINGS, protocol)
        (b,) = bt.simulate(head, variant, bt.Params(), SETTINGS, protocol)
        assert a.ranks[:n_head].tolist() == b.ranks.tolist()
        assert a.top[:n_head] == b.top


def test_lists_never_hold_items_the_user_reviewed_before() -> None:
    events = synthetic_reviews()
    tl = timeline(events, FAST)
    (res,) = bt.simulate(tl, bt.VARIANTS["sentiment_aware"], bt.Params(), SETTINGS, FAST)
    history: dict[str, set[str]] = {}
    point = 0
    for i, e in enumerate(events):
        if tl.test[i]:
            earlier = {x.item_id for x in events[:i] if x.user_id == e.user_id and x.ts < e.ts}
            assert not earlier & set(res.top[point])
            point += 1
        history.setdefault(e.user_id, set()).add(e.item_id)


def test_variants_see_sentiment_from_their_source() -> None:
    events = synthetic_reviews()
    tl = timeline(events, FAST)
    i = next(j for j, e in enumerate(events) if e.rating == 1)
    plain = EvidenceWeights(review_valence_shift=0.0)
    model = bt.observe(tl, i, bt.VARIANTS["sentiment_aware"], None, plain)
    oracle = bt.observe(tl, i, bt.VARIANTS["rating_oracle"], None, plain)
    blind = bt.observe(tl, i, bt.VARIANTS["taste_only"], None, plain)
    stars = bt.observe(tl, i, bt.VARIANTS["sentiment_stars"], None, plain)
    assert model.valence == pytest.approx(-0.75) and model.rating is None
    assert oracle.valence == -1.0 and oracle.rating is None
    assert blind.valence == 0.0
    assert stars.rating == 1 and stars.valence == model.valence
    # The calibration moves the model's valence only, as the worker's Processor does.
    shifted = EvidenceWeights(review_valence_shift=0.3)
    assert bt.observe(tl, i, bt.VARIANTS["sentiment_aware"], None, shifted).valence == (
        pytest.approx(-0.45)
    )
    assert bt.observe(tl, i, bt.VARIANTS["rating_oracle"], None, shifted).valence == -1.0
    assert bt.observe(tl, i, bt.VARIANTS["taste_only"], None, shifted).valence == 0.0
