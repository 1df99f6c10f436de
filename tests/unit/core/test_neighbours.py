"""Sentiment-signed item-to-item neighbours: pair evidence, bounded decayed lists, candidates."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.neighbours import (
    Engagement,
    EngagementWeights,
    NeighbourParams,
    Neighbours,
    PairEvidence,
    RecentEngagements,
    chat_engagement,
    click_engagement,
    fold_neighbours,
    fold_neighbours_many,
    fold_recent,
    neighbour_candidates,
    neighbour_scores,
    rank_weight,
    review_engagement,
)

W = EngagementWeights(review_interest=0.0, review_gain=1.0)  # a review: its sentiment alone
P = NeighbourParams(half_life_s=1.0)  # 1 s half-life: decay is easy to work out by hand


def _fold_all(events: list[Engagement], params: NeighbourParams = P):
    user, emitted = RecentEngagements(), []
    for e in events:
        user, out = fold_recent(user, e, params)
        emitted.extend(out)
    return user, emitted


def test_engagement_strengths() -> None:
    assert click_engagement("i", "purchase", 0, 1, W) == Engagement("i", 1.0, 1)
    assert click_engagement("i", "add_to_cart", 0, 1, W) == Engagement("i", 0.6, 1)
    assert click_engagement("i", "skip", 0, 1, W) == Engagement("i", -0.4, 1)
    assert click_engagement("i", "click", 30_000, 1, W) == Engagement("i", 0.4, 1)
    assert click_engagement("i", "click", 29_999, 1, W) is None  # a short click says nothing
    assert click_engagement("i", "view", 0, 1, W) is None
    # review: 0.7 * stars + 0.3 * valence; 5 stars and valence 1 -> 1.0; 1 star, -1 -> -1.0
    assert review_engagement("i", 1.0, 5, 1, W) == Engagement("i", 1.0, 1)
    assert review_engagement("i", -1.0, 1, 1, W) == Engagement("i", -1.0, 1)
    assert review_engagement("i", 0.1, 3, 1, W) is None  # 0.03: lukewarm
    # chat: 0.6 * valence when |valence| >= 0.3; a neutral question is no engagement
    assert chat_engagement("i", 0.5, 1, W) == Engagement("i", 0.3, 1)
    assert chat_engagement("i", 0.1, 1, W) is None
    assert chat_engagement(None, 0.9, 1, W) is None


def test_hand_computed_example() -> None:
    # purchase x (t=0): nothing to pair with.
    # 5-star review of y (t=1s), strength 1.0: positives [x]    -> x->y 1.0 * 1      = 1.0
    # add_to_cart z (t=2s), strength 0.6:      positives [y, x] -> y->z 0.6 * 1      = 0.6
    #                                                              x->z 0.6 * 1/2    = 0.3
    # skip w (t=3s), strength -0.4:         positives [z, y, x] -> z->w -0.4         = -0.4
    #                                                              y->w -0.4 / 2     = -0.2
    #                                                              x->w -0.4 / 3     = -0.1333
    events = [
        Engagement("x", 1.0, 0),
        Engagement("y", 1.0, 1000),
        Engagement("z", 0.6, 2000),
        Engagement("w", -0.4, 3000),
    ]
    user, emitted = _fold_all(events)
    got = [(e.source, e.target, round(e.weight, 4), e.ts) for e in emitted]
    assert got == [
        ("x", "y", 1.0, 1000),
        ("y", "z", 0.6, 2000),
        ("x", "z", 0.3, 2000),
        ("z", "w", -0.4, 3000),
        ("y", "w", -0.2, 3000),
        ("x", "w", -0.1333, 3000),
    ]
    assert [r.item_id for r in user.positives] == ["z", "y", "x"]
    assert [r.item_id for r in user.negatives] == ["w"]

    # Item x folds its three pieces of evidence with a 1 s half-life:
    # t=1s: y = 1.0
    # t=2s: y = 1.0 * 0.5 = 0.5, z = 0.3
    # t=3s: y = 0.25, z = 0.15, w = -0.1333 (best first)
    x = Neighbours()
    for e in emitted:
        if e.source == "x":
            x, score = fold_neighbours(x, e, P)
    assert x.updated_at == 3000
    assert [(i, round(s, 4)) for i, s in x.scores] == [("y", 0.25), ("z", 0.15), ("w", -0.1333)]
    assert score == pytest.approx(-0.4 / 3)

    # Candidates for a user whose only recent positive is x, at t=4s (one more half-life):
    # y = 0.125, z = 0.075; w is negative and never a candidate.
    fan = RecentEngagements(fold_recent(RecentEngagements(), events[0], P)[0].positives)
    cands = neighbour_candidates(fan, {"x": x}, 4000, P)
    assert [(i, round(s, 4)) for i, s in cands] == [("y", 0.125), ("z", 0.075)]


def test_a_disliked_item_suppresses_its_neighbours() -> None:
    # Positives [a]; negatives [d]. a's list: p 1.0, q 0.5. d's list: p 0.8, r 0.4.
    # p = 1.0 - 1 * 0.8 = 0.2; q = 0.5; r = 0 - 0.4 < 0 (dropped). Order: q, p.
    user = RecentEngagements()
    user, _ = fold_recent(user, Engagement("a", 1.0, 0), P)
    user, _ = fold_recent(user, Engagement("d", -1.0, 0), P)
    lists = {
        "a": Neighbours((("p", 1.0), ("q", 0.5)), 0),
        "d": Neighbours((("p", 0.8), ("r", 0.4), ("s", -0.3)), 0),
    }
    cands = neighbour_candidates(user, lists, 0, P)
    assert [(i, round(s, 4)) for i, s in cands] == [("q", 0.5), ("p", 0.2)]
    assert neighbour_scores(user, lists, ["p", "r", "zzz"], 0, P) == pytest.approx([0.2, 0, 0])
    # the lookup may be a callable; excluded (seen) items and the user's own never come back
    assert neighbour_candidates(user, lists.get, 0, P, exclude={"q"}) == [("p", pytest.approx(0.2))]
    own = Neighbours((("a", 2.0), ("d", 2.0), ("q", 0.1)), 0)
    assert [i for i, _ in neighbour_candidates(user, {"a": own}, 0, P)] == ["q"]


def test_positive_and_negative_move_items_between_lists() -> None:
    user, _ = _fold_all([Engagement("a", 1.0, 0), Engagement("b", 1.0, 1)])
    user, out = fold_recent(user, Engagement("a", -0.5, 2), P)  # changed their mind about a
    assert [r.item_id for r in user.positives] == ["b"]
    assert [r.item_id for r in user.negatives] == ["a"]
    assert [(e.source, e.target, e.weight) for e in out] == [("b", "a", -0.5)]
    user, out = fold_recent(user, Engagement("a", 1.0, 3), P)
    assert [r.item_id for r in user.positives] == ["a", "b"] and user.negatives == ()
    # a zero or non-finite engagement changes nothing
    assert fold_recent(user, Engagement("c", 0.0, 4), P) == (user, ())
    assert fold_recent(user, Engagement("c", math.nan, 4), P) == (user, ())


def test_recent_lists_are_bounded_and_newest_first() -> None:
    events = [Engagement(f"i{k}", 1.0, k) for k in range(12)]
    user, emitted = _fold_all(events)
    assert [r.item_id for r in user.positives] == [f"i{k}" for k in range(11, 3, -1)]
    last = [e for e in emitted if e.target == "i11"]
    assert len(last) == 8  # the 8 kept positives before it
    assert [round(e.weight, 4) for e in last] == [round(rank_weight(r), 4) for r in range(8)]


def test_reverse_gain_and_max_age() -> None:
    params = NeighbourParams(reverse_gain=0.5, pair_max_age_s=10.0)
    user, _ = fold_recent(RecentEngagements(), Engagement("a", 1.0, 0), params)
    _, out = fold_recent(user, Engagement("b", 0.8, 5_000), params)
    assert [(e.source, e.target, e.weight) for e in out] == [("a", "b", 0.8), ("b", "a", 0.4)]
    _, out = fold_recent(user, Engagement("b", 0.8, 11_000), params)  # a is 11 s old: too old
    assert out == ()


def test_neighbour_lists_keep_the_top_64_by_score() -> None:
    params = NeighbourParams(half_life_s=math.inf)
    state = Neighbours()
    for k in range(100):  # scores 0.01 .. 1.00, then a negative one
        state, _ = fold_neighbours(state, PairEvidence("a", f"b{k:03d}", (k + 1) / 100, 0), params)
    state, emitted = fold_neighbours(state, PairEvidence("a", "neg", -1.0, 0), params)
    assert len(state.scores) == 64
    assert emitted == 0.0  # the negative entry was pruned first: the list is full of better ones
    ids = [i for i, _ in state.scores]
    assert ids == [f"b{k:03d}" for k in range(99, 35, -1)]
    # ties are broken by id, so the order never depends on arrival order
    tied, _ = fold_neighbours_many(
        Neighbours(),
        [PairEvidence("a", t, 1.0, 0) for t in ("c", "a2", "b")],
        params,
    )
    assert [i for i, _ in tied.scores] == ["a2", "b", "c"]
    # self-pairs and zero or non-finite weights are ignored
    same, emitted = fold_neighbours(tied, PairEvidence("a", "a", 1.0, 5), params)
    assert same is tied and emitted == 0.0


def test_decay_in_event_time_and_late_evidence() -> None:
    params = NeighbourParams(half_life_s=10.0)
    s, _ = fold_neighbours(Neighbours(), PairEvidence("a", "b", 1.0, 0), params)
    s, score = fold_neighbours(s, PairEvidence("a", "c", 1.0, 10_000), params)
    assert dict(s.scores) == {"b": pytest.approx(0.5), "c": 1.0} and score == 1.0
    # late evidence is decayed to the list's time; the list does not rewind
    s2, score = fold_neighbours(s, PairEvidence("a", "b", 1.0, 0), params)
    assert s2.updated_at == 10_000 and score == pytest.approx(1.0)
    assert dict(s.at(20_000, 10.0)) == {"b": pytest.approx(0.25), "c": pytest.approx(0.5)}
    # small scores fall off on pruning
    faded, _ = fold_neighbours(s, PairEvidence("a", "d", 1.0, 10_000 * 40), params)
    assert [i for i, _ in faded.scores] == ["d"]


def test_round_trip_is_json_and_exact() -> None:
    user, emitted = _fold_all(
        [Engagement("x", 1.0, 0), Engagement("y", 0.3, 1), Engagement("z", -0.7, 2)]
    )
    back = RecentEngagements.from_dict(json.loads(json.dumps(user.to_dict())))
    assert back == user
    nb, _ = fold_neighbours_many(Neighbours(), [e for e in emitted if e.source == "x"], P)
    again = Neighbours.from_dict(json.loads(json.dumps(nb.to_dict())))
    assert again == nb and again.score("y") == nb.score("y")
    assert Neighbours.from_dict(Neighbours().to_dict()) == Neighbours()
    assert RecentEngagements.from_dict({}) == RecentEngagements()


def test_params_are_validated() -> None:
    with pytest.raises(ValueError):
        NeighbourParams(neighbours_max=0)


_events = st.lists(
    st.tuples(
        st.sampled_from("abcdefghij"),
        st.floats(-1.0, 1.0, allow_nan=False),
        st.integers(0, 10_000_000),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(_events)
def test_properties_bounds_order_and_batch_equals_steps(raw: list[tuple[str, float, int]]) -> None:
    params = NeighbourParams(recent_max=3, neighbours_max=4, half_life_s=3600.0)
    user, emitted = _fold_all([Engagement(i, s, t) for i, s, t in raw], params)
    assert len(user.positives) <= 3 and len(user.negatives) <= 3
    assert not {r.item_id for r in user.positives} & {r.item_id for r in user.negatives}
    assert all(e.source != e.target for e in emitted)
    by_source: dict[str, Neighbours] = {}
    for e in emitted:
        by_source[e.source], _ = fold_neighbours(by_source.get(e.source, Neighbours()), e, params)
    for nb in by_source.values():
        assert len(nb.scores) <= 4
        scores = [s for _, s in nb.scores]
        assert scores == sorted(scores, reverse=True)
    for source, nb in by_source.items():
        batch, _ = fold_neighbours_many(
            Neighbours(), [e for e in emitted if e.source == source], params
        )
        # pruning once at the end keeps at least as much as pruning after every step
        assert len(batch.scores) >= len(nb.scores)
    cands = neighbour_candidates(user, by_source, 10_000_000, params)
    assert all(s > 0 for _, s in cands)
    assert [s for _, s in cands] == sorted((s for _, s in cands), reverse=True)


def test_chat_interest_counts_a_mention_and_the_valence_moves_it() -> None:
    from stream.core.neighbours import EngagementWeights, chat_engagement

    plain = EngagementWeights()
    assert chat_engagement("m", 0.1, 0, plain) is None  # neutral: says nothing by default
    w = EngagementWeights(chat_interest=0.5, chat_gain=0.6)
    got = chat_engagement("m", 0.1, 0, w)
    assert got is not None and got.strength == pytest.approx(0.56)
    panned = chat_engagement("m", -1.0, 0, w)
    assert panned is None  # 0.5 - 0.6 = -0.1: below the threshold, neither
    hated = chat_engagement("m", -1.0, 0, EngagementWeights(chat_interest=0.2, chat_gain=0.6))
    assert hated is not None and hated.strength == pytest.approx(-0.4)


def test_review_interest_counts_writing_a_review() -> None:
    w = EngagementWeights(review_interest=0.3, review_gain=0.7)
    five = review_engagement("i", 1.0, 5, 1, w)
    assert five is not None and five.strength == pytest.approx(1.0)
    one = review_engagement("i", -1.0, 1, 1, w)
    assert one is not None and one.strength == pytest.approx(-0.4)  # a pan stays a dislike
    flat = review_engagement("i", 0.0, 3, 1, w)
    assert flat is not None and flat.strength == pytest.approx(0.3)  # lukewarm: still chosen
    assert review_engagement("i", 0.0, 3, 1, EngagementWeights(review_interest=0.0)) is None
