"""Item affect and popularity as arrays aligned with an index's item ids.

Ranking reads the affect of ~120 candidates per recommendation and the popularity of every item
once a second. Reading those one item at a time from a table (a dict lookup, a parse and a decay
each) cost more than the rest of a recommendation together; here they are a few numpy operations.
The board is a cache of the ``items`` table, never the record: whoever owns it writes each folded
``ItemState`` to both, and reloads the board from the table after a recovery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from stream.core.affect import ItemAffect
from stream.core.digest import digest8
from stream.core.item_state import ItemState
from stream.core.neighbours import Neighbours
from stream.core.popularity import Popularity

Floats = npt.NDArray[np.float64]


@lru_cache(maxsize=1 << 16)
def item_digest(item_id: str) -> bytes:
    """8-byte digest of an item id: what a user's seen list stores (``state.Seen``)."""
    return digest8(item_id)


def decay_factors(elapsed_ms: Floats, half_life_s: float) -> Floats:
    """``decay.decay_factor`` over an array (no elapsed time, or negative, keeps everything)."""
    if half_life_s <= 0:
        return np.where(elapsed_ms > 0, 0.0, 1.0)
    if np.isinf(half_life_s):
        return np.ones_like(elapsed_ms)
    out = np.ones_like(elapsed_ms, dtype=np.float64)
    ahead = elapsed_ms > 0  # only these decay (and nothing else is raised to a power)
    out[ahead] = 0.5 ** (elapsed_ms[ahead] / (1000.0 * half_life_s))
    return out


class ItemBoard:
    """Per-item affect and popularity sums, one row per id of the index it was made for."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids: tuple[str, ...] = tuple(ids)
        self.rows: dict[str, int] = {item_id: i for i, item_id in enumerate(self.ids)}
        n = len(self.ids)
        self._order = np.empty(n, dtype=np.int64)  # rank of each id in sorted order: tie-break
        self._order[np.argsort(np.array(self.ids, dtype=object), kind="stable")] = np.arange(n)
        digests = b"".join(item_digest(i) for i in self.ids)
        self.digests = np.frombuffer(digests, dtype="<u8")  # per row, to test seen lists at once
        self.clear()

    def clear(self) -> None:
        n = len(self.ids)
        self.total = np.zeros(n)
        self.weight = np.zeros(n)
        self.reviews = np.zeros(n, dtype=np.int64)
        self.affect_at = np.full(n, np.nan)  # nan: never reviewed
        self.pop = np.zeros(n)
        self.interactions = np.zeros(n, dtype=np.int64)
        self.pop_at = np.full(n, np.nan)  # nan: never interacted with
        self.neighbours: dict[str, Neighbours] = {}  # item -> its neighbour list, when it has one

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self.rows

    def put(
        self,
        item_id: str,
        affect: ItemAffect,
        popularity: Popularity,
        neighbours: Neighbours | None = None,
    ) -> bool:
        """Store one item's state; False (and nothing stored) for an id this board lacks.
        ``neighbours``: its neighbour list (None leaves the stored one as it is)."""
        row = self.rows.get(item_id)
        if row is None:
            return False
        if neighbours is not None:
            if neighbours.scores:
                self.neighbours[item_id] = neighbours
            else:
                self.neighbours.pop(item_id, None)
        self.total[row], self.weight[row] = affect.total, affect.weight
        self.reviews[row] = affect.count
        self.affect_at[row] = np.nan if affect.updated_at is None else affect.updated_at
        self.pop[row], self.interactions[row] = popularity.score, popularity.count
        self.pop_at[row] = np.nan if popularity.updated_at is None else popularity.updated_at
        return True

    def get(self, item_id: str) -> tuple[ItemAffect, Popularity] | None:
        """The stored state, or None for an unknown item or one never folded."""
        row = self.rows.get(item_id)
        if row is None or (np.isnan(self.affect_at[row]) and np.isnan(self.pop_at[row])):
            return None
        at = self.affect_at[row]
        affect = ItemAffect(
            float(self.total[row]),
            float(self.weight[row]),
            int(self.reviews[row]),
            None if np.isnan(at) else int(at),
        )
        pat = self.pop_at[row]
        pop = Popularity(
            float(self.pop[row]), int(self.interactions[row]), None if np.isnan(pat) else int(pat)
        )
        return affect, pop

    def state(self, item_id: str) -> ItemState:
        """An indexed item's whole state as a fold takes it (empty when never folded)."""
        got = self.get(item_id)
        nb = self.neighbours_of(item_id)
        if got is None:
            return ItemState() if nb is None else ItemState(neighbours=nb)
        return ItemState(*got) if nb is None else ItemState(*got, nb)

    def neighbours_of(self, item_id: str) -> Neighbours | None:
        """One item's neighbour list (None when it has none): a ``NeighbourLookup``."""
        return self.neighbours.get(item_id)

    def affect(self, item_id: str) -> ItemAffect | None:
        """One item's affect (None when never reviewed): the ranker's ``AffectLookup`` shape.
        Read directly, not through ``get``: ``_fill`` asks for every popular item per request."""
        row = self.rows.get(item_id)
        if row is None or np.isnan(self.affect_at[row]):
            return None
        return ItemAffect(
            float(self.total[row]),
            float(self.weight[row]),
            int(self.reviews[row]),
            int(self.affect_at[row]),
        )

    def rows_of(self, ids: Iterable[str]) -> npt.NDArray[np.int64]:
        """Row of each id, -1 for ids this board lacks."""
        try:  # the usual case: every id known, looked up without a Python frame per id
            return np.fromiter(map(self.rows.__getitem__, ids), dtype=np.int64)
        except KeyError:
            get = self.rows.get
            return np.fromiter((get(i, -1) for i in ids), dtype=np.int64)

    def decayed_affect(
        self, ids: Iterable[str], now_ms: int, half_life_s: float
    ) -> tuple[Floats, Floats]:
        """(total, weight) of each id's affect decayed to ``now_ms``; zeros when unknown.

        ``affect.affect_at`` over many items: ``total / (weight + prior)`` is the shrunk mean.
        """
        return self.decayed_affect_rows(self.rows_of(ids), now_ms, half_life_s)

    def decayed_affect_rows(
        self, rows: npt.NDArray[np.int64], now_ms: int, half_life_s: float
    ) -> tuple[Floats, Floats]:
        """``decayed_affect`` by row (-1: unknown)."""
        if rows.size and rows.min() >= 0:  # all known: no masking of unknown rows
            take = rows
            at = self.affect_at[take]
            valid = ~np.isnan(at)
        else:
            known = rows >= 0
            take = np.where(known, rows, 0)
            at = self.affect_at[take]
            valid = known & ~np.isnan(at)
        f = decay_factors(np.where(valid, now_ms - at, 0.0), half_life_s)
        total = np.where(valid, self.total[take] * f, 0.0)
        weight = np.where(valid, self.weight[take] * f, 0.0)
        return total, weight

    def popular(self, n: int, now_ms: int, half_life_s: float) -> list[tuple[str, float]]:
        """``popularity.top_popular`` over the board: the n best (id, score), ties by id."""
        if n <= 0:
            return []
        valid = ~np.isnan(self.pop_at)
        f = decay_factors(np.where(valid, now_ms - np.nan_to_num(self.pop_at), 0.0), half_life_s)
        score = np.where(valid, self.pop * f, 0.0)
        live = np.flatnonzero(score > 0)
        if live.size == 0:
            return []
        best = live[np.lexsort((self._order[live], -score[live]))][:n]
        return [(self.ids[r], float(score[r])) for r in best]
