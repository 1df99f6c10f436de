"""The default ranker for many users at once, on an ``ItemBoard``: the lists ``rank`` gives, one
user at a time, with the array work done once for all of them.

Per user, ``rank`` makes about a hundred small numpy calls (affect decay, popularity, scores,
ten MMR steps); their fixed cost, not the arithmetic, was most of a recommendation. Here the
element-wise work runs over the users' candidates laid end to end, and each MMR step is one
call over a (users x pool) array plus one matrix-vector product per user: the same operations on
the same numbers as ``rank``, so the same picks and scores (tested).
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from stream.core.board import ItemBoard
from stream.core.emotion import EmotionSummary
from stream.core.rank import (
    UNIT_BOUND,
    Candidates,
    PopularItems,
    RankedItem,
    RankParams,
    fill_and_order,
    keep_on_board,
    mmr,
    mmr_many,
    mmr_pool,
    mood_terms,
    rank,
    shrunk,
)

Vectors = npt.NDArray[np.float32]


def rank_many(
    candidates: Sequence[Candidates],
    moods: Sequence[EmotionSummary | None],
    *,
    board: ItemBoard,
    popular: Sequence[tuple[str, float]] | PopularItems,
    seen: Sequence[Container[str]],
    params: RankParams,
    now_ms: int,
    neighbours: Sequence[Mapping[str, float] | None],
) -> list[list[RankedItem]]:
    """``rank`` for each user (``candidates[j]``, ``moods[j]``, ``seen[j]``, ``neighbours[j]``).
    Users the array path cannot take (another variant, a candidate off the board, a seen list
    without digests) are ranked by ``rank`` itself."""
    pop_list = PopularItems.of(popular)
    out: list[list[RankedItem] | None] = [None] * len(candidates)
    fast: list[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    for j, cands in enumerate(candidates):
        kept = keep_on_board(board, cands.ids, seen[j]) if params.variant == "default" else None
        if kept is None:
            out[j] = rank(
                cands,
                moods[j],
                affect=board,
                popular=pop_list,
                seen=seen[j],
                params=params,
                now_ms=now_ms,
                neighbour=neighbours[j],
            )
        else:
            fast.append((j, kept[0], kept[1]))
    if fast:
        for j, items in _rank_on_board(
            fast, candidates, moods, board, pop_list, seen, params, now_ms, neighbours
        ):
            out[j] = items
    return [items if items is not None else [] for items in out]


def _rank_on_board(
    fast: list[tuple[int, npt.NDArray[np.int64], npt.NDArray[np.int64]]],
    candidates: Sequence[Candidates],
    moods: Sequence[EmotionSummary | None],
    board: ItemBoard,
    pop_list: PopularItems,
    seen: Sequence[Container[str]],
    params: RankParams,
    now_ms: int,
    neighbours: Sequence[Mapping[str, float] | None],
) -> list[tuple[int, list[RankedItem]]]:
    sizes = [keep.size for _, keep, _ in fast]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    rows = np.concatenate([r for _, _, r in fast])
    ids = [[candidates[j].ids[i] for i in keep] for j, keep, _ in fast]
    rel = np.concatenate([candidates[j].relevance[keep] for j, keep, _ in fast])
    total, weight = board.decayed_affect_rows(rows, now_ms, params.affect_half_life_s)
    aff = shrunk(total, weight, params.affect_prior)
    if pop_list.top > 0:
        pop = np.log1p(pop_list.on_board(board)[rows]) / math.log1p(pop_list.top)
    else:
        pop = np.zeros(rows.size)
    terms = [mood_terms(moods[j], params) for j, _, _ in fast]
    betas = [params.affect_weight * (1.0 + params.comfort_gain * need) for need, _ in terms]
    lams = [min(max(params.mmr_lambda - params.explore_gain * joy, 0.0), 1.0) for _, joy in terms]
    beta = np.repeat(np.asarray(betas, dtype=np.float64), sizes)
    scores = rel.astype(np.float64) + beta * aff + params.popularity_weight * pop
    if params.neighbour_weight:
        nb = np.zeros(rows.size)
        has = np.zeros(rows.size, dtype=bool)
        for s, (j, _, _), user_ids in zip(range(len(fast)), fast, ids, strict=True):
            got = neighbours[j]
            if got:
                a, b = starts[s], starts[s + 1]
                nb[a:b] = np.fromiter((got.get(i, 0.0) for i in user_ids), np.float64, b - a)
                has[a:b] = True
        scores = np.where(has, scores + params.neighbour_weight * nb, scores)
    segments = [scores[starts[s] : starts[s + 1]] for s in range(len(fast))]
    orders = _diversified_many(
        segments,
        lams,
        params.top_k,
        [candidates[j] for j, _, _ in fast],
        [k for _, k, _ in fast],
        ids,
    )
    results = []
    at = starts.tolist()
    for s, (j, _, _) in enumerate(fast):
        picks = [at[s] + i for i in orders[s]]
        chosen = zip(scores[picks].tolist(), rel[picks].tolist(), aff[picks].tolist(), strict=True)
        picked = [
            RankedItem(ids[s][i], sc, r, a) for i, (sc, r, a) in zip(orders[s], chosen, strict=True)
        ]
        results.append((j, fill_and_order(picked, pop_list, seen[j], board.affect, params, now_ms)))
    return results


def _diversified_many(
    scores: list[npt.NDArray[np.float64]],
    lams: list[float],
    k: int,
    candidates: list[Candidates],
    keeps: list[npt.NDArray[np.int64]],
    ids: list[list[str]],
) -> list[list[int]]:
    """``rank._diversified`` for each user: the pools' vectors in one gather, MMR together."""
    orders: list[list[int] | None] = [None] * len(scores)
    pools: dict[int, npt.NDArray[np.int64]] = {}
    for s, (sc, lam, cands) in enumerate(zip(scores, lams, candidates, strict=True)):
        if (cands.vectors is None and (cands.fetch is None or not ids[s])) or lam >= 1.0:
            orders[s] = mmr(sc, None, k, lam)  # score order: no vectors needed
        else:
            pools[s] = mmr_pool(sc, k, lam)
    vecs = _pool_vectors(pools, candidates, keeps, ids)
    norms = _max_square_norms(vecs)
    for s, pool in list(pools.items()):
        if pool.size < scores[s].shape[0] and norms[s] > UNIT_BOUND:
            full = np.arange(scores[s].shape[0], dtype=np.int64)  # the bound fails: all of them
            vecs[s] = _pool_vectors({s: full}, candidates, keeps, ids)[s]
            pools[s] = full
    picks = mmr_many(
        [scores[s][p] for s, p in pools.items()],
        [vecs[s] for s in pools],
        k,
        [lams[s] for s in pools],
    )
    for (s, pool), got in zip(pools.items(), picks, strict=True):
        orders[s] = [int(pool[i]) for i in got]
    return [o if o is not None else [] for o in orders]


def _pool_vectors(
    pools: dict[int, npt.NDArray[np.int64]],
    candidates: list[Candidates],
    keeps: list[npt.NDArray[np.int64]],
    ids: list[list[str]],
) -> dict[int, Vectors]:
    """Each pool's vectors: sliced from the candidates' own, or fetched in one call for all."""
    out: dict[int, Vectors] = {}
    wanted: list[str] = []
    spans: list[tuple[int, int, int]] = []
    fetch = None
    for s, pool in pools.items():
        cands = candidates[s]
        if cands.vectors is not None:
            out[s] = cands.vectors[keeps[s][pool]]
        else:
            fetch = cands.fetch
            spans.append((s, len(wanted), len(wanted) + pool.size))
            wanted.extend(ids[s][i] for i in pool)
    if spans:
        assert fetch is not None
        got = np.asarray(fetch(wanted), dtype=np.float32)
        for s, a, b in spans:
            out[s] = got[a:b]
    return out


def _max_square_norms(vecs: dict[int, Vectors]) -> dict[int, float]:
    """``max_square_norm`` of each pool, from one pass over all their rows."""
    keys = [s for s, v in vecs.items() if v.shape[0]]
    out = dict.fromkeys(vecs, 0.0)
    if keys:
        rows = np.concatenate([vecs[s] for s in keys])
        sq = np.einsum("ij,ij->i", rows, rows)
        starts = np.cumsum([0] + [vecs[s].shape[0] for s in keys[:-1]])
        out.update(zip(keys, np.maximum.reduceat(sq, starts).tolist(), strict=True))
    return out
