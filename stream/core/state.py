"""Per-user and per-item aggregates and the folds the Faust agents and the replay both call.

``fold_user`` and ``fold_item`` take the same three small event types (``ReviewObs``,
``ChatObs``, ``ClickObs``); ``recommend`` turns a user's state into a ranked list through the
``ItemIndex`` port. Keeping these here means the live worker and the backtest cannot drift apart.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core.board import ItemBoard, item_digest
from stream.core.emotion import (
    EmotionObs,
    EmotionState,
    EmotionSummary,
    HalfLives,
    emotion_at,
    fold_emotion,
)
from stream.core.hybrid import add_items, membership, neighbour_feature
from stream.core.item_state import ItemParams as ItemParams
from stream.core.item_state import ItemState as ItemState
from stream.core.item_state import ItemUpdate as ItemUpdate
from stream.core.item_state import fold_item as fold_item
from stream.core.item_state import fold_item_pairs as fold_item_pairs
from stream.core.neighbours import (
    Engagement,
    EngagementWeights,
    NeighbourLookup,
    NeighbourParams,
    PairEvidence,
    RecentEngagements,
    chat_engagement,
    click_engagement,
    fold_recent,
    review_engagement,
)
from stream.core.observations import ChatObs as ChatObs
from stream.core.observations import ClickObs as ClickObs
from stream.core.observations import ReviewObs as ReviewObs
from stream.core.observations import UserEvent as UserEvent
from stream.core.observations import Vector as Vector
from stream.core.rank import AffectLookup, Candidates, PopularItems, RankedItem, RankParams, rank
from stream.core.rank_batch import rank_many
from stream.core.taste import (
    EvidenceWeights,
    TasteObs,
    TasteState,
    click_evidence,
    fold_taste,
    review_evidence,
    review_sentiment,
)
from stream.ports import EKMAN, ItemIndex

# ----------------------------------------------------------------------------- seen items


@dataclass(frozen=True)
class Seen:
    """The most recent items a user bought or reviewed, as 8-byte digests, oldest first.

    Digests keep the stored size independent of how long the platform's item ids are
    (64 items = 684 base64 characters); membership is all ranking needs. A false match
    has odds of about 100 / 2**64.
    """

    digests: bytes = b""
    _set: frozenset[bytes] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.digests) % 8:
            raise ValueError("seen digests must be a multiple of 8 bytes")
        parts = frozenset(self.digests[i : i + 8] for i in range(0, len(self.digests), 8))
        object.__setattr__(self, "_set", parts)

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and item_digest(item_id) in self._set

    def __len__(self) -> int:
        return len(self.digests) // 8

    @cached_property
    def digest_array(self) -> npt.NDArray[np.uint64]:
        """The digests as integers, for ``ItemBoard.digests`` lookups."""
        return np.frombuffer(self.digests, dtype="<u8")

    def add(self, item_id: str, limit: int) -> Seen:
        """Mark ``item_id`` as the most recent; the oldest fall off beyond ``limit``."""
        d = item_digest(item_id)
        kept = [self.digests[i : i + 8] for i in range(0, len(self.digests), 8)]
        kept = [x for x in kept if x != d] + [d]
        return Seen(b"".join(kept[-limit:] if limit > 0 else []))

    def to_str(self) -> str:
        return base64.b64encode(self.digests).decode("ascii")

    @classmethod
    def from_str(cls, text: str) -> Seen:
        return cls(base64.b64decode(text))


# ----------------------------------------------------------------------------- user state


@dataclass(frozen=True)
class ClickMood:
    """Weak mood evidence from actions: a purchase lifts, a skip dips; views say nothing."""

    purchase: float = 0.3
    add_to_cart: float = 0.15
    skip: float = -0.1
    arousal: float = 0.4
    confidence: float = 0.3

    def observe(self, action: str, ts: int) -> EmotionObs | None:
        valence = {
            "purchase": self.purchase,
            "add_to_cart": self.add_to_cart,
            "skip": self.skip,
        }.get(action, 0.0)
        if valence == 0.0:
            return None
        ekman = [0.0] * len(EKMAN)
        ekman[EKMAN.index("joy")] = max(valence, 0.0)
        ekman[EKMAN.index("neutral")] = 1.0 - max(valence, 0.0)
        return EmotionObs(valence, self.arousal, tuple(ekman), "click", ts, self.confidence)


@dataclass(frozen=True)
class UserParams:
    half_lives: HalfLives = field(default_factory=HalfLives)
    taste_half_life_s: float = 30 * 86400.0
    evidence: EvidenceWeights = field(default_factory=EvidenceWeights)
    click_mood: ClickMood = field(default_factory=ClickMood)
    seen_max: int = 64  # with the dedup window, keeps state beyond the taste vector < 2 KB
    engagement: EngagementWeights = field(default_factory=EngagementWeights)
    neighbours: NeighbourParams = field(default_factory=NeighbourParams)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> UserParams:
        """From a Settings-like object; ``overrides`` replace any field (e.g. ``evidence``)."""
        values: dict[str, Any] = {
            "half_lives": HalfLives.from_settings(settings),
            "taste_half_life_s": float(settings.taste_half_life_s),
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class UserState:
    emotion: EmotionState = field(default_factory=EmotionState)
    taste: TasteState = field(default_factory=TasteState)
    seen: Seen = field(default_factory=Seen)
    # The last 8 positive and 8 negative items (``neighbours.fold_recent``): 586 bytes of JSON
    # when full with 9-character ids, 2.6 KB with 128-character ids (the contract's maximum).
    recent: RecentEngagements = field(default_factory=RecentEngagements)

    def to_dict(self) -> dict[str, Any]:
        return {
            "emotion": self.emotion.to_dict(),
            "taste": self.taste.to_dict(),
            "seen": self.seen.to_str(),
            "recent": self.recent.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UserState:
        return cls(  # records written before 2026-12 also hold "rec_at": ignored
            EmotionState.from_dict(data["emotion"]),
            TasteState.from_dict(data["taste"]),
            Seen.from_str(data.get("seen", "")),
            RecentEngagements.from_dict(data.get("recent") or {}),
        )


@dataclass(frozen=True)
class UserUpdate:
    """What one event did: the mood after it and whether taste moved. (How often to recommend
    is the worker's choice, on the wall clock: ``stream.core.coalesce``.)"""

    emotion: EmotionSummary
    taste_changed: bool
    # Item-to-item evidence from the user's recent positives (``neighbours.fold_recent``), to be
    # folded into the neighbour list of each ``source`` item (``fold_item_pairs``).
    pairs: tuple[PairEvidence, ...] = ()


def fold_user(
    state: UserState, event: UserEvent, params: UserParams
) -> tuple[UserState, UserUpdate]:
    """Fold one user event into mood, taste, seen items and recent engagements."""
    emotion, taste, seen = state.emotion, state.taste, state.seen
    taste_obs: TasteObs | None = None
    mood: EmotionObs | None = None
    ev = params.evidence
    engagement = engagement_of(event, params.engagement)
    if isinstance(event, ReviewObs):
        mood = EmotionObs(
            event.valence, event.arousal, event.ekman, "review", event.ts, event.confidence
        )
        if event.item_vector is not None:
            weight = review_evidence(event.valence, event.rating, ev) * event.confidence
            taste_obs = TasteObs(event.item_vector, weight, event.ts)
        seen = seen.add(event.item_id, params.seen_max)
    elif isinstance(event, ChatObs):
        mood = EmotionObs(
            event.valence, event.arousal, event.ekman, "chat", event.ts, event.confidence
        )
        if event.item_vector is not None:
            sentiment = review_sentiment(event.valence, None, ev)
            weight = (ev.chat_interest + ev.chat_gain * sentiment) * event.confidence
            taste_obs = TasteObs(event.item_vector, weight, event.ts)
    else:
        mood = params.click_mood.observe(event.action, event.ts)
        if event.item_vector is not None:
            weight = click_evidence(event.action, event.dwell_ms, ev)
            taste_obs = TasteObs(event.item_vector, weight, event.ts)
        if event.action == "purchase":
            seen = seen.add(event.item_id, params.seen_max)
    if mood is not None:
        emotion, _ = fold_emotion(emotion, mood, params.half_lives)
    changed = False
    if taste_obs is not None:
        taste, changed = fold_taste(taste, taste_obs, params.taste_half_life_s)
    recent: RecentEngagements = state.recent
    pairs: tuple[PairEvidence, ...] = ()
    if engagement is not None:
        recent, pairs = fold_recent(recent, engagement, params.neighbours)
    new = UserState(emotion, taste, seen, recent)
    return new, UserUpdate(emotion.summary(), changed, pairs)


def engagement_of(event: UserEvent, w: EngagementWeights) -> Engagement | None:
    """The signed engagement an event says with its item, None when it says nothing clear."""
    if isinstance(event, ReviewObs):
        return review_engagement(event.item_id, event.valence, event.rating, event.ts, w)
    if isinstance(event, ChatObs):
        return chat_engagement(event.item_id, event.valence, event.ts, w)
    return click_engagement(event.item_id, event.action, event.dwell_ms, event.ts, w)


# ----------------------------------------------------------------------------- recommend


@dataclass(frozen=True)
class Recommendation:
    items: tuple[RankedItem, ...]
    emotion: EmotionSummary  # the mood at the time of the recommendation
    cold: bool  # no taste direction: the list is popularity
    variant: str
    mood: EmotionState  # the emotion state it summarises (Ekman mix and all)


def candidates_many(
    tastes: Sequence[TasteState], index: ItemIndex, ns: Sequence[int]
) -> list[Candidates]:
    """Top-n items by inner product with each normalised taste vector, with one index search and
    one vector gather.

    Empty for a cold user, and for a taste of another dimension than the index (left by an
    older model) until the user's next event restarts it.

    Each user gets the first ``ns[i]`` hits of a search for ``max(ns)``: for an exact index that
    is the user's own top-``ns[i]``.
    """
    out = [Candidates() for _ in tastes]
    queries = [t.query() for t in tastes]
    warm = [
        i for i, q in enumerate(queries) if q is not None and ns[i] > 0 and q.shape[0] == index.dim
    ]  # the rest are cold, or a taste from another model's space: popularity
    if not warm:
        return out
    k = max(ns[i] for i in warm)
    scores, ids = index.search(np.stack([queries[i] for i in warm]), k)  # type: ignore[misc]
    for j, i in enumerate(warm):
        hits = ids[j][: ns[i]]
        if hits:
            out[i] = Candidates(tuple(hits), scores[j, : len(hits)], fetch=index.vectors)
    return out


def with_popular(
    cands: Candidates,
    taste: TasteState,
    index: ItemIndex,
    popular: Sequence[tuple[str, float]],
    n: int,
    pool: PopularPool | None = None,
) -> Candidates:
    """Add the ``n`` most popular indexed items to a user's candidates, scored by the same
    relevance (inner product with the taste query).

    Nearest-neighbour candidates alone never contain a popular item that lies outside the
    user's taste neighbourhood, so the ranker's popularity term could not promote it. On the
    Musical Instruments backtest (median 6 reviews per user) popularity is the strongest single
    signal; this is how the default ranker gets to use it. ``pool``: the popular items' vectors,
    fetched once for many users (``PopularPool.of``).
    """
    query = taste.query()
    if n <= 0 or query is None or query.shape[0] != index.dim or not cands.ids:
        return cands
    if pool is None:
        pool = PopularPool.of(popular, index, n + len(cands.ids))
    have = set(cands.ids)
    rows = []
    for r, item_id in enumerate(pool.ids):
        if item_id not in have:
            rows.append(r)
            if len(rows) == n:
                break
    if not rows:
        return cands
    extra = [pool.ids[r] for r in rows]
    vecs = pool.vectors[rows]
    relevance = np.concatenate([cands.relevance, vecs @ query.astype(np.float32)])
    vectors = None if cands.vectors is None else np.concatenate([cands.vectors, vecs])
    return Candidates((*cands.ids, *extra), relevance, vectors, cands.fetch)


@dataclass(frozen=True, eq=False)
class PopularPool:
    """The most popular indexed items, best first, with their vectors."""

    ids: tuple[str, ...]
    vectors: Vector

    @classmethod
    def of(cls, popular: Sequence[tuple[str, float]], index: ItemIndex, limit: int) -> PopularPool:
        """The first ``limit`` items of ``popular`` that the index holds."""
        ids = [item_id for item_id, _ in popular][:limit]
        try:
            vectors = index.vectors(ids) if ids else np.zeros((0, index.dim), np.float32)
        except KeyError:  # some are popular but not in this index version: skip those
            ids = [item_id for item_id, _ in popular if _indexed(index, item_id)][:limit]
            vectors = index.vectors(ids) if ids else np.zeros((0, index.dim), np.float32)
        return cls(tuple(ids), np.asarray(vectors, dtype=np.float32))


def _indexed(index: ItemIndex, item_id: str) -> bool:
    try:
        index.vectors([item_id])
    except KeyError:
        return False
    return True


def recommend(
    state: UserState,
    *,
    index: ItemIndex | None,
    affect: AffectLookup,
    popular: Sequence[tuple[str, float]],
    rank_params: RankParams,
    user_params: UserParams,
    now_ms: int,
    n_candidates: int = 100,
    neighbours: NeighbourLookup | None = None,
    members: Container[str] | None = None,
) -> Recommendation:
    """Candidates from the index by taste, then ``rank``.

    Asks the index for ``n_candidates`` plus as many as the user has seen, so that dropping
    seen items still leaves ``n_candidates`` to re-rank. ``popular`` should be
    ``top_popular(items, N, now_ms, ...)`` with N >= top_k + len(seen) for cold users.
    """
    return recommend_many(
        [state],
        index=index,
        affect=affect,
        popular=popular,
        rank_params=rank_params,
        user_params=user_params,
        now_ms=now_ms,
        n_candidates=n_candidates,
        neighbours=neighbours,
        members=members,
    )[0]


def recommend_many(
    states: Sequence[UserState],
    *,
    index: ItemIndex | None,
    affect: AffectLookup,
    popular: Sequence[tuple[str, float]],
    rank_params: RankParams,
    user_params: UserParams,
    now_ms: int,
    n_candidates: int = 100,
    neighbours: NeighbourLookup | None = None,
    members: Container[str] | None = None,
) -> list[Recommendation]:
    """``recommend`` for many users at once: one index search and one fetch of the popular
    items' vectors for all of them, then ``rank`` per user.

    ``neighbours``: each item's neighbour list (the board, or a mapping): the default ranker then
    adds the neighbours of each user's recent positives to the candidates and blends in their
    score; ``item_cf`` ranks by it alone. ``members``: the ids the index holds (default: the
    board's when ``affect`` is an ``ItemBoard``, else every id is tried)."""
    variant = rank_params.variant
    cands = [Candidates() for _ in states]
    if index is not None and variant not in ("popularity", "item_cf") and states:
        ns = [n_candidates + len(s.seen) for s in states]
        cands = candidates_many([s.taste for s in states], index, ns)
        n_pop = rank_params.popular_candidates
        if n_pop > 0 and any(c.ids for c in cands):
            pool = PopularPool.of(popular, index, n_pop + max(len(c.ids) for c in cands))
            cands = [
                with_popular(c, s.taste, index, popular, n_pop, pool)
                for c, s in zip(cands, states, strict=True)
            ]
    feats: list[dict[str, float] | None] = [None] * len(states)
    use_nb = (
        neighbours is not None
        and index is not None
        and rank_params.neighbour_candidates > 0
        and (variant == "item_cf" or (variant == "default" and rank_params.neighbour_weight))
    )
    if use_nb and index is not None and neighbours is not None:
        inside = membership(members) if members is not None else _members(affect, index)
        for j, s in enumerate(states):
            feat = neighbour_feature(
                s.recent,
                neighbours,
                now_ms,
                user_params.neighbours,
                n=rank_params.neighbour_candidates,
                exclude=s.seen,
                members=inside,
            )
            if not feat:
                continue
            feats[j] = dict(feat)
            query = s.taste.query()
            if query is not None and query.shape[0] != index.dim:
                query = None
            extra = list(feat)
            if query is None and variant == "default":  # no taste: popular items compete too
                extra += [i for i, _ in popular[: rank_params.popular_candidates] if inside(i)]
            cands[j] = add_items(cands[j], query, index, extra)
    pop_items = PopularItems.of(popular)
    now_states = [emotion_at(s.emotion, now_ms, user_params.half_lives) for s in states]
    moods = [n.summary() for n in now_states]
    if isinstance(affect, ItemBoard):  # the worker's case: the array path, the same lists
        lists = rank_many(
            cands,
            moods,
            board=affect,
            popular=pop_items,
            seen=[s.seen for s in states],
            params=rank_params,
            now_ms=now_ms,
            neighbours=feats,
        )
    else:
        lists = [
            rank(
                cand,
                mood,
                affect=affect,
                popular=pop_items,
                seen=state.seen,
                params=rank_params,
                now_ms=now_ms,
                neighbour=nb,
            )
            for state, cand, mood, nb in zip(states, cands, moods, feats, strict=True)
        ]
    out = []
    for state, items, mood, now_state, nb in zip(
        states, lists, moods, now_states, feats, strict=True
    ):
        query = state.taste.query()
        cold = query is None or (index is not None and query.shape[0] != index.dim)
        cold = cold and nb is None
        out.append(Recommendation(tuple(items), mood, cold, rank_params.variant, now_state))
    return out


def _members(affect: AffectLookup, index: ItemIndex) -> Callable[[str], bool]:
    """Whether an id is in the index: the board knows its ids; else ask the index."""
    if isinstance(affect, ItemBoard):
        return affect.__contains__
    return lambda item_id: _indexed(index, item_id)
