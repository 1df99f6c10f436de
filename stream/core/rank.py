"""Re-ranking of index candidates: relevance, item affect fitted to the user's mood, diversity.

Variants (``RankParams.variant``), compared by the backtest:

- ``default``: relevance plus item affect, where affect counts more the worse the user feels, then
  MMR diversification whose strength grows with the user's good mood (see ``score_default``).
- ``seed_formula``: the seeds' z = w * r * s baseline (see ``score_seed``); no diversification.
- ``taste_only``: relevance to the taste vector alone (the "no sentiment, no re-rank" baseline).
- ``popularity``: decayed popularity alone (the cold-start baseline).
- ``item_cf``: the item-neighbour score alone (``stream.core.hybrid``), popularity fill.

The default ranker also blends in the item-neighbour score of each candidate when the caller
passes one (``neighbour``; ``RankParams.neighbour_weight``).

Every variant drops seen items, returns at most ``top_k`` unique ids, and fills a short list from
popularity, so a cold user (no taste vector, hence no candidates) gets the popular items.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core.affect import ItemAffect, affect_at
from stream.core.board import ItemBoard
from stream.core.emotion import EmotionSummary

VARIANTS: tuple[str, ...] = ("default", "seed_formula", "taste_only", "popularity", "item_cf")

# An ItemBoard answers for all candidates at once; a mapping or a callable, one item at a time.
AffectLookup = ItemBoard | Mapping[str, ItemAffect] | Callable[[str], ItemAffect | None]


@dataclass(frozen=True)
class RankParams:
    """Ranking knobs with defaults; the backtest tunes them."""

    variant: str = "default"
    top_k: int = 10
    mmr_lambda: float = 0.8  # 1 = pure score order, 0 = pure diversity
    # Defaults: what the backtest's tuning selected on the Musical Instruments timeline
    # (docs/backtests/musical-instruments/tuning.json); the rest were not moved by it.
    affect_weight: float = 1.0  # weight of item affect for a user in a neutral or unknown mood
    comfort_gain: float = 2.0  # extra affect weight at fully negative, fully confident mood
    explore_gain: float = 0.2  # how far MMR lambda drops at fully positive, confident mood
    popularity_weight: float = 0.5  # prior toward popular items (log-scaled to [0, 1])
    popular_candidates: int = 20  # most popular items added to every user's candidates
    affect_prior: float = 2.0  # neutral pseudo-reviews shrinking an item's affect
    emotion_prior: float = 1.0  # user evidence weight at which the mood counts half
    affect_half_life_s: float = 90 * 86400.0  # Settings.affect_half_life_s
    neighbour_weight: float = 1.0  # weight of the neighbour score (best neighbour = 1)
    neighbour_candidates: int = 50  # neighbours of recent positives added to the candidates

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown ranker {self.variant!r}; expected one of {VARIANTS}")
        if self.top_k < 1:
            raise ValueError("top_k must be >= 1")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError("mmr_lambda must be in [0, 1]")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> RankParams:
        """From a Settings-like object (``ranker``, ``top_k``, ``affect_half_life_s``)."""
        values: dict[str, Any] = {
            "variant": settings.ranker,
            "top_k": int(settings.top_k),
            "affect_half_life_s": float(settings.affect_half_life_s),
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True, eq=False)
class Candidates:
    """Index hits for one user, best first: ids, inner-product relevance, and their vectors.

    ``fetch`` (e.g. ``ItemIndex.vectors``) stands in for ``vectors``: the ranker then gathers
    the vectors of the candidates it keeps, once, and only when it diversifies. Copying ~120
    vectors per stage had cost more than the rest of a recommendation.
    """

    ids: tuple[str, ...] = ()
    relevance: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    vectors: npt.NDArray[np.float32] | None = None  # (n, dim), rows aligned with ids; for MMR
    fetch: Callable[[Sequence[str]], npt.NDArray[np.float32]] | None = None

    def __post_init__(self) -> None:
        rel = np.asarray(self.relevance, dtype=np.float32).reshape(-1)
        if rel.size != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids but {rel.size} relevance scores")
        object.__setattr__(self, "relevance", rel)
        if self.vectors is not None:
            vec = np.asarray(self.vectors, dtype=np.float32)
            if vec.ndim != 2 or vec.shape[0] != len(self.ids):
                raise ValueError(f"vectors must be ({len(self.ids)}, dim), got {vec.shape}")
            object.__setattr__(self, "vectors", vec)


@dataclass(frozen=True)
class RankedItem:
    item_id: str
    score: float
    relevance: float
    affect: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "score": round(self.score, 6),
            "relevance": round(self.relevance, 6),
            "affect": round(self.affect, 6),
        }


def mmr(
    scores: npt.NDArray[np.floating[Any]],
    vectors: npt.NDArray[np.float32] | None,
    k: int,
    lam: float,
) -> list[int]:
    """Maximal marginal relevance: greedily pick lam*score - (1-lam)*max similarity to picks.

    Similarity is the inner product of the (unit) item vectors. With ``lam == 1`` or no vectors
    it is plain score order (ties keep input order), which the tests pin down.
    """
    n = int(scores.shape[0])
    k = min(k, n)
    if k <= 0:
        return []
    if vectors is None or lam >= 1.0:
        return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]
    return mmr_many([scores], [vectors], k, [lam])[0]


def mmr_many(
    scores: Sequence[npt.NDArray[np.floating[Any]]],
    vectors: Sequence[npt.NDArray[np.float32]],
    k: int,
    lams: Sequence[float],
) -> list[list[int]]:
    """``mmr`` for each user (lambda below 1, vectors given), stepped together over a (users x
    longest list) array padded with -inf: per user only the k - 1 similarity rows remain (a
    pick's base becomes -inf, so its gain stays -inf)."""
    sizes = [s.shape[0] for s in scores]
    if not sizes or max(sizes) == 0:
        return [[] for _ in scores]
    users, width = len(sizes), max(sizes)
    base = np.full((users, width), -np.inf)
    for u, sc in enumerate(scores):
        base[u, : sizes[u]] = lams[u] * sc.astype(np.float64)
    gain = base.copy()
    max_sim = np.zeros((users, width))
    step_of = np.asarray([lam - 1.0 for lam in lams], dtype=np.float64)[:, None]
    ks = [min(k, n) for n in sizes]
    picks: list[list[int]] = [[] for _ in range(users)]
    for step in range(max(ks)):
        best = np.argmax(gain, axis=1).tolist()
        more = False
        for u in range(users):
            if step >= ks[u]:
                continue
            b = best[u]
            picks[u].append(b)
            if step == ks[u] - 1:
                continue
            more = True
            base[u, b] = -np.inf
            row = max_sim[u, : sizes[u]]
            np.maximum(row, vectors[u] @ vectors[u][b], out=row)
        if not more:
            break
        np.multiply(max_sim, step_of, out=gain)
        gain += base
    return picks


# Inner products of unit item vectors are at most this (float32 rounding included): the bound
# that lets ``mmr_pool`` leave out candidates MMR can never pick.
UNIT_BOUND = 1.001


def mmr_pool(
    scores: npt.NDArray[np.floating[Any]], k: int, lam: float, bound: float = UNIT_BOUND
) -> npt.NDArray[np.int64]:
    """Positions (ascending) of the only candidates ``mmr`` can pick, when no similarity among
    them exceeds ``bound``.

    While fewer than k are picked, one of the k best-scored candidates is still open, and its
    gain is at least ``lam * s_k - (1 - lam) * bound`` (s_k: the k-th best score); a candidate's
    gain is at most ``lam * s``. So one scoring below ``s_k - (1 - lam) / lam * bound`` is never
    picked, and neither its vector nor its similarities are needed: about half the gather and
    the matrix products of a recommendation.
    """
    n = int(scores.shape[0])
    k = min(k, n)
    if k <= 0 or lam >= 1.0 or lam <= 0.0 or k == n:
        return np.arange(n, dtype=np.int64)
    kth = float(np.partition(scores, n - k)[n - k])
    cut = kth - (1.0 - lam) / lam * bound - 1e-9
    return np.flatnonzero(scores >= cut).astype(np.int64)


@dataclass(frozen=True, eq=False)
class PopularItems:
    """``top_popular``'s list read once for many users: each ranking looks up every
    candidate's popularity, and rebuilding a dict of the list per user cost as much as the
    lookups."""

    items: tuple[tuple[str, float], ...]
    scores: dict[str, float]
    top: float  # best positive score, 0 when none

    @classmethod
    def of(cls, popular: Sequence[tuple[str, float]] | PopularItems) -> PopularItems:
        if isinstance(popular, PopularItems):
            return popular
        items = tuple(popular)
        top = max((s for _, s in items if s > 0), default=0.0)
        return cls(items, dict(items), top)

    def on_board(self, board: ItemBoard) -> npt.NDArray[np.float64]:
        """Each board row's score in this list (0 outside it); kept for the last board."""
        cached = self.__dict__.get("_on_board")
        if cached is not None and cached[0] is board:
            return cached[1]
        rows = np.zeros(len(board))
        for item_id, score in self.scores.items():
            row = board.rows.get(item_id)
            if row is not None:
                rows[row] = score
        object.__setattr__(self, "_on_board", (board, rows))
        return rows


def _lookup(affect: AffectLookup) -> Callable[[str], ItemAffect | None]:
    if isinstance(affect, ItemBoard):
        return affect.affect
    if isinstance(affect, Mapping):
        return affect.get
    return affect


def decayed_affect(
    affect: AffectLookup, ids: Sequence[str], now_ms: int, half_life_s: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(total, weight) of each item's affect at ``now_ms`` (``affect_at``), zeros if unknown."""
    if isinstance(affect, ItemBoard):
        return affect.decayed_affect(ids, now_ms, half_life_s)
    get = _lookup(affect)
    states = [get(i) for i in ids]
    at = [None if s is None else affect_at(s, now_ms, half_life_s) for s in states]
    total = np.array([0.0 if s is None else s.total for s in at], dtype=np.float64)
    weight = np.array([0.0 if s is None else s.weight for s in at], dtype=np.float64)
    return total, weight


def shrunk(
    total: npt.NDArray[np.float64], weight: npt.NDArray[np.float64], prior: float
) -> npt.NDArray[np.float64]:
    """``ItemAffect.mean(prior)`` over arrays."""
    denom = weight + max(prior, 0.0)
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, total / safe, 0.0)


def mood_terms(emotion: EmotionSummary | None, params: RankParams) -> tuple[float, float]:
    """(need for comfort, room to explore), each in [0, 1], scaled by trust in the mood."""
    if emotion is None or emotion.weight <= 0:
        return 0.0, 0.0
    trust = emotion.weight / (emotion.weight + params.emotion_prior)
    return trust * max(0.0, -emotion.valence), trust * max(0.0, emotion.valence)


def score_default(
    relevance: npt.NDArray[np.float32],
    affect: npt.NDArray[np.float64],
    popularity: npt.NDArray[np.float64],
    emotion: EmotionSummary | None,
    params: RankParams,
    neighbour: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.float64], float]:
    """Scores and the MMR lambda of the default ranker.

    Intent: relevance to taste leads. Item affect (how warmly reviewers speak of an item) is a
    mild prior for everyone, and weighs up to ``1 + comfort_gain`` times more when the user is
    in a negative mood we trust: someone sad or angry is steered toward well-loved, comforting
    items and away from items that disappoint. A user in a good mood needs no steering, so the
    affect weight stays at its base and MMR diversifies more (lambda lowered by
    ``explore_gain * joy``): their list explores. Popularity is a small tie-breaker.
    """
    need, joy = mood_terms(emotion, params)
    beta = params.affect_weight * (1.0 + params.comfort_gain * need)
    scores = relevance.astype(np.float64) + beta * affect + params.popularity_weight * popularity
    if neighbour is not None and params.neighbour_weight:
        scores = scores + params.neighbour_weight * neighbour
    lam = min(max(params.mmr_lambda - params.explore_gain * joy, 0.0), 1.0)
    return scores, lam


def score_seed(
    relevance: npt.NDArray[np.float32],
    affect: npt.NDArray[np.float64],
    evidence: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The seeds' z = w * r * s, read as: w = 1 + log(1 + review evidence behind the item),
    r = relevance clipped at 0, s = sentiment mapped to [0, 1] ((1 + affect) / 2, 0.5 unknown).
    """
    w = 1.0 + np.log1p(np.maximum(evidence, 0.0))
    r = np.maximum(relevance.astype(np.float64), 0.0)
    s = (1.0 + affect) / 2.0
    return np.asarray(w * r * s, dtype=np.float64)


def rank(
    candidates: Candidates,
    emotion: EmotionSummary | None,
    *,
    affect: AffectLookup,
    popular: Sequence[tuple[str, float]] | PopularItems,
    seen: Container[str],
    params: RankParams,
    now_ms: int,
    neighbour: Mapping[str, float] | None = None,
) -> list[RankedItem]:
    """Rank one user's candidates; see the module docstring for the variants.

    ``neighbour``: each candidate's item-neighbour score (``hybrid.neighbour_feature``), 0 for
    the rest; None without neighbour data.

    ``emotion`` is the user's mood at ``now_ms`` (``emotion_at(...).summary()``); ``popular`` is
    ``top_popular(...)`` at ``now_ms``, best first (or that list as ``PopularItems``, read once
    for many users), used for cold users, to fill short lists and as the popularity feature;
    ``seen`` holds the items never to recommend again.
    """
    get_affect = _lookup(affect)
    pop_list = PopularItems.of(popular)

    board = affect if isinstance(affect, ItemBoard) else None
    fast = None
    if board is not None and params.variant != "popularity":
        fast = keep_on_board(board, candidates.ids, seen)
    keep: list[int] | npt.NDArray[np.int64] = []
    rows = None
    if fast is not None and board is not None:  # the same selection, by array operations
        keep, rows = fast
        ids = [candidates.ids[i] for i in keep]
        total, weight = board.decayed_affect_rows(rows, now_ms, params.affect_half_life_s)
    else:
        if params.variant != "popularity":
            keep = _keep_unseen(candidates.ids, seen)
        ids = [candidates.ids[i] for i in keep]
        total, weight = decayed_affect(affect, ids, now_ms, params.affect_half_life_s)
    rel = candidates.relevance[keep]

    aff = shrunk(total, weight, params.affect_prior)
    if pop_list.top > 0:
        if rows is not None and board is not None:
            raw_pop = pop_list.on_board(board)[rows]
        else:
            get_pop = pop_list.scores.get
            raw_pop = np.fromiter((get_pop(i, 0.0) for i in ids), np.float64, len(ids))
        pop = np.log1p(raw_pop) / math.log1p(pop_list.top)
    else:
        pop = np.zeros(len(ids))

    nb = None
    if neighbour:
        nb = np.fromiter((neighbour.get(i, 0.0) for i in ids), np.float64, len(ids))
    if params.variant == "default":
        scores, lam = score_default(rel, aff, pop, emotion, params, nb)
        order = _diversified(scores, lam, params.top_k, candidates, keep, ids)
    elif params.variant == "item_cf":
        scores = np.zeros(len(ids)) if nb is None else nb
        pos = np.flatnonzero(scores > 0)
        order = [int(i) for i in pos[np.argsort(-scores[pos], kind="stable")][: params.top_k]]
    elif params.variant == "seed_formula":
        scores = score_seed(rel, shrunk(total, weight, 0.0), weight)
        order = mmr(scores, None, params.top_k, 1.0)
    else:  # taste_only (popularity keeps no candidates)
        scores = rel.astype(np.float64)
        order = mmr(scores, None, params.top_k, 1.0)

    out = [RankedItem(ids[i], float(scores[i]), float(rel[i]), float(aff[i])) for i in order]
    return fill_and_order(out, pop_list, seen, get_affect, params, now_ms)


def _diversified(
    scores: npt.NDArray[np.float64],
    lam: float,
    k: int,
    candidates: Candidates,
    keep: list[int] | npt.NDArray[np.int64],
    ids: Sequence[str],
) -> list[int]:
    """MMR over the kept candidates, with the vectors of only those it can pick (``mmr_pool``);
    all of them when those vectors are not unit length, where the bound does not hold."""
    if candidates.vectors is None and (candidates.fetch is None or not ids):
        return mmr(scores, None, k, lam)
    pool = mmr_pool(scores, k, lam)
    while True:
        if candidates.vectors is not None:
            vecs = candidates.vectors[np.asarray(keep, dtype=np.int64)[pool]]
        else:
            assert candidates.fetch is not None
            vecs = np.asarray(candidates.fetch([ids[i] for i in pool]), dtype=np.float32)
        if pool.size == scores.shape[0] or max_square_norm(vecs) <= UNIT_BOUND:
            break
        pool = np.arange(scores.shape[0], dtype=np.int64)
    return [int(pool[i]) for i in mmr(scores[pool], vecs, k, lam)]


def max_square_norm(vectors: npt.NDArray[np.float32]) -> float:
    return float(np.einsum("ij,ij->i", vectors, vectors).max()) if vectors.size else 0.0


def _in_order_shown(items: list[RankedItem]) -> list[RankedItem]:
    """Scores that read in the list's order: MMR may place a more diverse item above one that
    scored higher, so each shown score is capped at the one above it."""
    out: list[RankedItem] = []
    for item in items:
        if out and item.score > out[-1].score:
            item = RankedItem(item.item_id, out[-1].score, item.relevance, item.affect)
        out.append(item)
    return out


def _keep_unseen(ids: Sequence[str], seen: Container[str]) -> list[int]:
    """Positions of the first occurrence of each candidate not in ``seen``."""
    keep: list[int] = []
    taken: set[str] = set()
    for i, item_id in enumerate(ids):
        if item_id not in seen and item_id not in taken:
            taken.add(item_id)
            keep.append(i)
    return keep


def keep_on_board(
    board: ItemBoard, ids: Sequence[str], seen: Container[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Positions of the first occurrence of each unseen candidate, and their board rows; None
    when the board lacks a candidate or ``seen`` offers no ``digest_array`` (then the caller
    tests one id at a time)."""
    digests = getattr(seen, "digest_array", None)
    rows = board.rows_of(ids)
    if digests is None or (rows < 0).any():
        return None
    if len(set(rows.tolist())) == rows.size:  # the usual case: index hits are unique
        first = np.ones(rows.size, dtype=bool)
    else:
        first = np.zeros(rows.size, dtype=bool)
        first[np.unique(rows, return_index=True)[1]] = True
    if len(digests):  # at most seen_max (64): a broadcast compare beats np.isin's sort
        first &= ~(board.digests[rows][:, None] == digests[None, :]).any(axis=1)
    keep = np.flatnonzero(first)
    return keep, rows[keep]


def fill_and_order(
    ranked: list[RankedItem],
    popular: PopularItems,
    seen: Container[str],
    get_affect: Callable[[str], ItemAffect | None],
    params: RankParams,
    now_ms: int,
) -> list[RankedItem]:
    """Top up to ``top_k`` with popular items, their score never above the last ranked one;
    shown scores then read in list order (``_in_order_shown``).

    When the whole list is popularity (the ``popularity`` variant, or a cold user with no
    candidates) the score is the popularity, log-scaled to [0, 1].
    """
    by_popularity = params.variant == "popularity" or not ranked
    if len(ranked) >= params.top_k:
        return _in_order_shown(ranked)
    pop_max = popular.top or 1.0
    chosen = {r.item_id for r in ranked}
    floor = min(ranked[-1].score, 0.0) if ranked else 0.0
    for item_id, pop_score in popular.items:
        if len(ranked) >= params.top_k:
            break
        if item_id in chosen or item_id in seen:
            continue
        state = get_affect(item_id)
        aff = 0.0
        if state is not None:
            aff = affect_at(state, now_ms, params.affect_half_life_s).mean(params.affect_prior)
        # Popularity log-scaled to [0, 1] like the ranker's feature, never a raw count beside
        # scores near 0-1.
        score = math.log1p(max(pop_score, 0.0)) / math.log1p(pop_max) if by_popularity else floor
        ranked.append(RankedItem(item_id, score, 0.0, aff))
        chosen.add(item_id)
    return _in_order_shown(ranked)
