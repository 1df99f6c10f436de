from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.core.emotion import EmotionState
from stream.core.popularity import top_popular
from stream.core.rank import RankParams
from stream.core.state import (
    ChatObs,
    ClickObs,
    ItemParams,
    ItemState,
    ReviewObs,
    Seen,
    UserParams,
    UserState,
    candidates_many,
    fold_item,
    fold_user,
    recommend,
    with_popular,
)
from stream.ports import EKMAN

DIM = 12
T0 = 1_700_000_000_000
P = UserParams()
SAD = tuple(1.0 if e == "sadness" else 0.0 for e in EKMAN)
JOY = tuple(1.0 if e == "joy" else 0.0 for e in EKMAN)


class ArrayIndex:
    """An exact in-memory ItemIndex for tests of the core's use of the port."""

    def __init__(self, n: int, seed: int = 0) -> None:
        v = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
        self.matrix = v / np.linalg.norm(v, axis=1, keepdims=True)
        self._ids = [f"item{i:03d}" for i in range(n)]
        self.rows = {item_id: i for i, item_id in enumerate(self._ids)}
        self.asked: list[int] = []

    version = "test"
    dim = DIM

    def search(
        self, vectors: npt.NDArray[np.float32], k: int
    ) -> tuple[npt.NDArray[np.float32], list[list[str]]]:
        self.asked.append(k)
        scores = vectors @ self.matrix.T
        order = np.argsort(-scores, axis=1)[:, :k]
        top = np.take_along_axis(scores, order, axis=1)
        return top, [[self._ids[j] for j in row] for row in order]

    def vectors(self, item_ids: Sequence[str]) -> npt.NDArray[np.float32]:
        return self.matrix[[self.rows[i] for i in item_ids]]

    def ids(self) -> list[str]:
        return list(self._ids)


INDEX = ArrayIndex(200)


def review(
    item: str, valence: float, rating: int | None, ts: int, index: ArrayIndex = INDEX
) -> ReviewObs:
    vec = index.vectors([item])[0] if item in index.rows else None
    return ReviewObs("u1", item, valence, SAD if valence < 0 else JOY, 0.5, rating, ts, vec)


def click(item: str, action: str, ts: int) -> ClickObs:
    return ClickObs("u1", item, action, 5_000, ts, INDEX.vectors([item])[0])


def test_a_review_moves_mood_taste_and_seen() -> None:
    state, update = fold_user(UserState(), review("item001", -0.8, 1, T0), P)
    assert update.emotion.valence == pytest.approx(-0.8)
    assert update.emotion.dominant == "sadness"
    assert update.taste_changed
    assert "item001" in state.seen and "item002" not in state.seen


def test_clicks_move_mood_weakly_and_only_purchases_are_seen() -> None:
    state, update = fold_user(UserState(), click("item001", "view", T0), P)
    assert update.emotion.weight == 0.0  # a view says nothing about mood
    state, update = fold_user(state, click("item002", "purchase", T0 + 1), P)
    assert update.emotion.valence > 0 and update.emotion.weight == pytest.approx(0.3)
    assert "item002" in state.seen and "item001" not in state.seen


def test_chat_about_an_item_is_a_weak_review_and_unknown_items_keep_taste() -> None:
    vec = INDEX.vectors(["item005"])[0]
    chat = ChatObs("u1", 0.9, JOY, 0.6, T0, "item005", vec)
    state, update = fold_user(UserState(), chat, P)
    assert update.taste_changed and state.taste.weight == pytest.approx(P.evidence.chat_gain * 0.9)
    assert len(state.seen) == 0
    state2, update2 = fold_user(state, review("not-indexed", 0.9, 5, T0 + 1), P)
    assert not update2.taste_changed and state2.taste == state.taste
    assert "not-indexed" in state2.seen


def test_seen_keeps_the_most_recent_hundred() -> None:
    seen = Seen()
    for i in range(150):
        seen = seen.add(f"item{i:03d}", 100)
    assert len(seen) == 100
    assert "item049" not in seen and "item050" in seen
    seen = seen.add("item050", 100).add("new", 100)  # 050 seen again: now the most recent
    assert len(seen) == 100
    assert "item050" in seen and "new" in seen and "item051" not in seen
    assert Seen.from_str(seen.to_str()) == seen
    assert 5 not in seen


def test_user_state_round_trip_and_size_budget() -> None:
    state = UserState()
    for i in range(120):
        state, _ = fold_user(
            state, review(f"item{i:03d}", 0.5 - (i % 3) / 2, 1 + i % 5, T0 + i * 1000), P
        )
        state, _ = fold_user(state, ChatObs("u1", -0.2, SAD, 0.3, T0 + i * 1000 + 1), P)
        state, _ = fold_user(state, click(f"item{i:03d}", "skip", T0 + i * 1000 + 2), P)
    data = json.loads(json.dumps(state.to_dict()))
    assert UserState.from_dict(data) == state
    data["taste"]["vec"] = None
    assert len(json.dumps(data)) <= 2048  # per-user state other than the taste vector
    # long platform ids cost nothing extra: seen stores fixed-size digests
    long_ids = state
    for i in range(100):
        uuid_like = f"{i:08d}-aaaa-bbbb-cccc-ddddeeeeffff"
        long_ids = UserState(
            long_ids.emotion, long_ids.taste, long_ids.seen.add(uuid_like, P.seen_max)
        )
    assert len(long_ids.seen.to_str()) == len(state.seen.to_str())


events = st.lists(
    st.tuples(
        st.sampled_from(["review", "chat", "click"]),
        st.integers(0, 199),
        st.floats(-1.0, 1.0),
        st.sampled_from(["view", "click", "add_to_cart", "purchase", "skip"]),
        st.integers(0, 10**9),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(events)
def test_any_history_round_trips_and_recommends_unseen_items(history: list) -> None:  # type: ignore[type-arg]
    state = UserState()
    for kind, n, valence, action, dt in history:
        item = f"item{n:03d}"
        if kind == "review":
            event: ReviewObs | ChatObs | ClickObs = review(item, valence, None, T0 + dt)
        elif kind == "chat":
            event = ChatObs("u1", valence, SAD, 0.5, T0 + dt)
        else:
            event = click(item, action, T0 + dt)
        state, update = fold_user(state, event, P)
        assert update.emotion.weight >= 0
    assert UserState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    popular = [(f"item{i:03d}", float(200 - i)) for i in range(40)]
    rec = recommend(
        state,
        index=INDEX,
        affect={},
        popular=popular,
        rank_params=RankParams(),
        user_params=P,
        now_ms=T0 + 10**9 + 1,
        n_candidates=30,
    )
    ids = [i.item_id for i in rec.items]
    assert len(ids) == len(set(ids)) == 10
    assert not any(i in state.seen for i in ids)


def test_recommend_follows_taste_and_asks_for_enough_candidates() -> None:
    index = ArrayIndex(200, seed=3)
    state = UserState()
    for i, item in enumerate(["item010", "item011", "item012"]):
        state, _ = fold_user(state, review(item, 0.9, 5, T0 + i, index), P)
    rec = recommend(
        state,
        index=index,
        affect={},
        popular=[],
        rank_params=RankParams(),
        user_params=P,
        now_ms=T0 + 10,
        n_candidates=50,
    )
    assert not rec.cold and index.asked == [50 + 3]
    query = state.taste.query()
    assert query is not None
    best = [i for i in np.argsort(-(index.matrix @ query)) if f"item{i:03d}" not in state.seen]
    assert rec.items[0].item_id == f"item{best[0]:03d}"
    assert rec.items[0].relevance == pytest.approx(float(index.matrix[best[0]] @ query), abs=1e-5)


def test_cold_user_gets_popularity() -> None:
    items = {}
    for i, item in enumerate(["item001", "item002", "item002", "item003"]):
        items[item], _ = fold_item(
            items.get(item, ItemState()), click(item, "purchase", T0 + i), ItemParams()
        )
    popular = top_popular({k: v.popularity for k, v in items.items()}, 10, T0 + 10, 7 * 86400.0)
    rec = recommend(
        UserState(),
        index=INDEX,
        affect={},
        popular=popular,
        rank_params=RankParams(),
        user_params=P,
        now_ms=T0 + 10,
    )
    # item003 was bought after item001, so it has decayed less
    assert rec.cold and [i.item_id for i in rec.items] == ["item002", "item003", "item001"]
    assert rec.items[0].score == pytest.approx(1.0)  # log-scaled popularity, not the count 2.0
    assert all(0.0 < i.score <= 1.0 for i in rec.items)
    assert rec.emotion.weight == 0.0


def test_a_taste_from_another_model_space_is_treated_as_cold() -> None:
    other = ArrayIndex(50, seed=1)
    other.dim = DIM + 4  # type: ignore[misc]
    state, _ = fold_user(UserState(), review("item001", 0.9, 5, T0), P)
    rec = recommend(
        state,
        index=other,
        affect={},
        popular=[("item007", 1.0)],
        rank_params=RankParams(),
        user_params=P,
        now_ms=T0 + 1,
    )
    assert rec.cold and [i.item_id for i in rec.items] == ["item007"] and other.asked == []
    warm = recommend(
        state,
        index=INDEX,
        affect={},
        popular=[],
        user_params=P,
        now_ms=T0 + 1,
        rank_params=RankParams(variant="popularity"),
    )
    assert not warm.cold and warm.items == ()


def test_fold_item_tracks_affect_and_popularity() -> None:
    state, update = fold_item(ItemState(), review("item001", 0.6, 2, T0), ItemParams())
    assert update.affect == pytest.approx(0.6) and update.popularity == 1.0
    state, update = fold_item(state, click("item001", "view", T0 + 1), ItemParams())
    assert update.affect == pytest.approx(0.6) and update.popularity > 1.0
    _, update = fold_item(ItemState(), review("item001", 0.6, 2, T0), ItemParams(rating_share=1.0))
    assert update.affect == pytest.approx(-0.5)  # 2 stars
    chat = ChatObs("u1", 0.9, JOY, 0.5, T0 + 2, "item001")
    same, _ = fold_item(state, chat, ItemParams(chat_affect=0.0))
    assert same == state
    talked, update = fold_item(state, chat, ItemParams())  # a chat about it: a weaker review
    assert talked.affect.count == 2 and update.affect > 0.6
    assert talked.popularity.count == state.popularity.count + 1
    alone, _ = fold_item(state, ChatObs("u1", 0.9, JOY, 0.5, T0 + 2), ItemParams())
    assert alone == state  # a chat about nothing
    assert ItemState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


def test_params_from_settings() -> None:
    from stream.settings import Settings

    s = Settings(half_life_chat_s=10.0, taste_half_life_s=20.0, ranker="taste_only", top_k=5)
    assert UserParams.from_settings(s).half_lives.chat_s == 10.0
    assert UserParams.from_settings(s).taste_half_life_s == 20.0
    assert RankParams.from_settings(s).variant == "taste_only"
    assert RankParams.from_settings(s, top_k=7).top_k == 7
    assert ItemParams.from_settings(s).affect_half_life_s == s.affect_half_life_s
    assert EmotionState() == UserState().emotion


def test_popular_items_join_the_candidates_with_their_relevance() -> None:
    index = ArrayIndex(200, seed=5)
    state = UserState()
    state, _ = fold_user(state, review("item001", 0.9, 5, T0, index), P)
    query = state.taste.query()
    assert query is not None
    far = [f"item{i:03d}" for i in np.argsort(index.matrix @ query)[:3]]  # least relevant
    popular = [("not-indexed", 9.0), (far[0], 8.0), (far[1], 7.0), (far[2], 6.0)]
    cands = candidates_many([state.taste], index, [5])[0]
    merged = with_popular(cands, state.taste, index, popular, n=2)
    assert merged.ids == (*cands.ids, far[0], far[1])
    assert merged.relevance[-1] == pytest.approx(float(index.matrix[index.rows[far[1]]] @ query))
    assert merged.vectors is None and merged.fetch is not None  # gathered by the ranker
    assert merged.fetch(merged.ids).shape == (7, DIM)
    # A strong popularity prior can now lift an item the taste neighbourhood never contained.
    params = RankParams(popularity_weight=5.0, popular_candidates=1, mmr_lambda=1.0)
    rec = recommend(
        state,
        index=index,
        affect={},
        popular=popular,
        rank_params=params,
        user_params=P,
        now_ms=T0 + 1,
        n_candidates=5,
    )
    assert far[0] in [r.item_id for r in rec.items[:3]]
    assert with_popular(cands, UserState().taste, index, popular, n=2) is cands  # cold user
