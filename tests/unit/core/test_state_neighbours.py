"""The neighbour folds inside the user and item state, against a hand-computed example, and the
hybrid candidates in ``recommend``."""

from __future__ import annotations

import json

import pytest

from stream.core.neighbours import EngagementWeights, Neighbours, PairEvidence
from stream.core.rank import RankParams
from stream.core.state import (
    ItemParams,
    ItemState,
    UserParams,
    UserState,
    fold_item_pairs,
    fold_user,
    recommend,
)
from tests.unit.core.test_state import INDEX, T0, review

DAY = 86_400_000
# engagement = the review's sentiment alone, so the strengths below are the valences
P = UserParams(engagement=EngagementWeights(review_interest=0.0, review_gain=1.0))


def test_user_fold_emits_pairs_and_item_fold_keeps_neighbours_hand_computed() -> None:
    # A liked (0.8), then B liked (0.6) a day later, C liked (0.9) 60 days after that (one
    # neighbour half-life), then D panned (-0.5) at the same time as C.
    t1, t2 = T0 + DAY, T0 + DAY + 60 * DAY
    events = [
        review("item001", 0.8, None, T0),
        review("item002", 0.6, None, t1),
        review("item003", 0.9, None, t2),
        review("item004", -0.5, None, t2),
        review("item005", 0.1, None, t2),  # lukewarm: neither, emits nothing
    ]
    state, pairs = UserState(), []
    for e in events:
        state, update = fold_user(state, e, P)
        pairs.append(update.pairs)
    got = [[(p.source, p.target, round(p.weight, 6), p.ts) for p in ps] for ps in pairs]
    assert got == [
        [],
        [("item001", "item002", 0.6, t1)],
        [("item002", "item003", 0.9, t2), ("item001", "item003", 0.45, t2)],
        [
            ("item003", "item004", -0.5, t2),
            ("item002", "item004", -0.25, t2),
            ("item001", "item004", round(-0.5 / 3, 6), t2),
        ],
        [],
    ]
    assert [r.item_id for r in state.recent.positives] == ["item003", "item002", "item001"]
    assert [r.item_id for r in state.recent.negatives] == ["item004"]
    # the user record carries the recent items through JSON
    assert UserState.from_dict(json.loads(json.dumps(state.to_dict()))).recent == state.recent

    # item001's list: B 0.6 at t1 decays one half-life to 0.3 at t2; C 0.45; D -1/6.
    item = ItemState()
    for ps in pairs:
        mine = [p for p in ps if p.source == "item001"]
        item, _ = fold_item_pairs(item, mine, ItemParams())
    assert item.neighbours.updated_at == t2
    assert [i for i, _ in item.neighbours.scores] == ["item003", "item002", "item004"]
    assert dict(item.neighbours.scores) == pytest.approx(
        {"item003": 0.45, "item002": 0.3, "item004": -0.5 / 3}
    )
    assert ItemState.from_dict(json.loads(json.dumps(item.to_dict()))) == item


def test_recommend_adds_neighbours_of_recent_positives_and_dislikes_suppress() -> None:
    state, _ = fold_user(UserState(), review("item001", 0.8, None, T0), P)
    lists = {
        "item001": Neighbours((("item150", 1.0), ("item151", 0.5)), T0),
        "item009": Neighbours((("item150", 4.0),), T0),
    }
    plain = recommend(
        state,
        index=INDEX,
        affect={},
        popular=[],
        rank_params=RankParams(neighbour_weight=0.0, top_k=200),
        user_params=P,
        now_ms=T0 + 1,
        n_candidates=5,
    )
    assert "item150" not in [i.item_id for i in plain.items]
    hybrid = recommend(
        state,
        index=INDEX,
        affect={},
        popular=[],
        rank_params=RankParams(neighbour_weight=10.0),
        user_params=P,
        now_ms=T0 + 1,
        n_candidates=5,
        neighbours=lists,
    )
    assert [i.item_id for i in hybrid.items][:2] == ["item150", "item151"]
    cf = recommend(
        state,
        index=INDEX,
        affect={},
        popular=[("item100", 1.0)],
        rank_params=RankParams(variant="item_cf"),
        user_params=P,
        now_ms=T0 + 1,
        neighbours=lists,
    )
    assert [i.item_id for i in cf.items] == ["item150", "item151", "item100"]  # popularity fill
    # panning item009 (whose fans loved item150) pushes item150 below item151
    panned, _ = fold_user(state, review("item009", -0.9, None, T0 + 2), P)
    cf2 = recommend(
        panned,
        index=INDEX,
        affect={},
        popular=[],
        rank_params=RankParams(variant="item_cf"),
        user_params=P,
        now_ms=T0 + 3,
        neighbours=lists,
    )
    assert [i.item_id for i in cf2.items] == ["item151"]


def test_pair_evidence_to_a_missing_item_is_ignored_by_candidates() -> None:
    state, _ = fold_user(UserState(), review("item001", 0.8, None, T0), P)
    lists = {"item001": Neighbours((("not-in-index", 1.0),), T0)}
    got = recommend(
        state,
        index=INDEX,
        affect={},
        popular=[],
        rank_params=RankParams(variant="item_cf"),
        user_params=P,
        now_ms=T0 + 1,
        neighbours=lists,
    )
    assert got.items == ()
    assert PairEvidence("a", "b", 1.0, 0).target == "b"
