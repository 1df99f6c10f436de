"""Candidates from three sources merged for the ranker: taste (index hits), item neighbours of the
user's recent positives, and popular items.

``rank.rank`` scores them (``RankParams.neighbour_weight`` is the weight of the neighbour score in
the default ranker; the ``item_cf`` variant ranks by the neighbour score alone). This module only
builds the candidate lists and the per-user neighbour feature:

- ``neighbour_feature``: ``neighbours.neighbour_candidates`` (a disliked item's neighbours are
  suppressed there), scaled so the user's best neighbour scores 1.
- ``add_items``: extra ids (neighbours, popular items for a user without taste) appended to a
  user's ``Candidates`` with the same relevance (inner product with the taste query; 0 without
  one). Ids the index lacks are dropped: the index is the catalog of the moment.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence

import numpy as np
import numpy.typing as npt

from stream.core.neighbours import (
    NeighbourLookup,
    NeighbourParams,
    RecentEngagements,
    neighbour_candidates,
)
from stream.core.rank import Candidates
from stream.ports import ItemIndex

Vector = npt.NDArray[np.float32]


def neighbour_feature(
    recent: RecentEngagements,
    lookup: NeighbourLookup,
    now_ms: int,
    params: NeighbourParams,
    *,
    n: int,
    exclude: Container[str] = (),
    members: Container[str] | Callable[[str], bool] | None = None,
) -> dict[str, float]:
    """Up to ``n`` neighbour candidates (id -> score in (0, 1], best = 1), seen and
    non-catalog items left out."""
    if n <= 0 or not recent.positives:
        return {}
    raw = neighbour_candidates(recent, lookup, now_ms, params, n=1 << 30)
    inside = membership(members)
    kept = [(i, s) for i, s in raw if i not in exclude and inside(i)][:n]
    if not kept:
        return {}
    top = kept[0][1]
    return {i: s / top for i, s in kept}


def membership(members: Container[str] | Callable[[str], bool] | None) -> Callable[[str], bool]:
    """A membership test from a container, a predicate, or None (everything is a member)."""
    if members is None:
        return lambda _: True
    if callable(members):
        return members
    return members.__contains__


def add_items(
    cands: Candidates,
    query: Vector | None,
    index: ItemIndex,
    extra: Sequence[str],
) -> Candidates:
    """``cands`` plus the ids of ``extra`` it lacks, in order, scored by the same relevance (the
    inner product with ``query``; 0 when the user has no taste direction). Ids must be in the
    index (``neighbour_feature`` filters by membership)."""
    have = set(cands.ids)
    new = [i for i in dict.fromkeys(extra) if i not in have]
    if not new:
        return cands
    if query is not None and query.shape[0] == index.dim:
        vecs = np.asarray(index.vectors(new), dtype=np.float32)
        rel = vecs @ query.astype(np.float32)
    else:
        vecs = None
        rel = np.zeros(len(new), np.float32)
    relevance = np.concatenate([cands.relevance, rel.astype(np.float32)])
    vectors = None
    if cands.vectors is not None:
        more = vecs if vecs is not None else np.asarray(index.vectors(new), dtype=np.float32)
        vectors = np.concatenate([cands.vectors, more])
    return Candidates((*cands.ids, *new), relevance, vectors, cands.fetch or index.vectors)
