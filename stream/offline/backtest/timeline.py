"""The events in time order, the test points and the item index snapshots."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from stream.adapters.index import (
    FaissItemIndex,
    make_index,
)
from stream.contract.records import Review
from stream.errors import DatasetError
from stream.offline.backtest.protocol import Protocol, iso_day, rebuild_times, warmup_time
from stream.ports import Scores
from stream.worker.item_events import affect_of

REVIEWS_PER_ITEM = 8  # as `moodstream index build --reviews-per-item` (its default)


@dataclass(frozen=True, eq=False)
class Timeline:
    """The events and everything about them that does not depend on the variant."""

    events: list[Review]
    ts: npt.NDArray[np.int64]
    scores: Scores
    groups: list[tuple[int, int]]  # [start, end) of events sharing a timestamp
    test: npt.NDArray[np.bool_]  # per event: is it a test point
    warmup_ms: int
    rebuilds: list[int]
    model_obs: list[tuple[float, tuple[float, ...], float, float]]  # valence, ekman, arousal, conf
    first_seen: dict[str, int]  # item -> time of its first review

    @property
    def test_index(self) -> npt.NDArray[np.int64]:
        return np.flatnonzero(self.test)


def build_timeline(events: Sequence[Review], scores: Scores, protocol: Protocol) -> Timeline:
    """Group events by time and mark the test points (see the module docstring)."""
    if not events:
        raise DatasetError("no review events to backtest")
    ts = np.fromiter((e.ts for e in events), dtype=np.int64, count=len(events))
    if np.any(np.diff(ts) < 0):
        raise ValueError("events must be sorted by ts")
    groups: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(events) + 1):
        if i == len(events) or ts[i] != ts[start]:
            groups.append((start, i))
            start = i
    warm = warmup_time(protocol.warmup, ts.tolist())
    first_user: dict[str, int] = {}
    first_item: dict[str, int] = {}
    test = np.zeros(len(events), dtype=np.bool_)
    for i, e in enumerate(events):
        first = first_user.setdefault(e.user_id, e.ts)
        first_item.setdefault(e.item_id, e.ts)
        test[i] = first < e.ts and e.ts >= warm
    model_obs = [affect_of(scores, i, e.text) for i, e in enumerate(events)]
    rebuilds = rebuild_times(
        warm if protocol.rebuild.strip().lower() == "once" else int(ts[0]),
        int(ts[-1]),
        protocol.rebuild,
    )
    return Timeline(list(events), ts, scores, groups, test, warm, rebuilds, model_obs, first_item)


class Snapshots:
    """The item index as rebuilt at each rebuild time, from reviews strictly before it.

    Incremental: a rebuild recomputes only the items reviewed since the previous one.
    """

    def __init__(self, timeline: Timeline, model_sha: str = "") -> None:
        self._tl = timeline
        self._model_sha = model_sha
        self._recent: dict[str, list[int]] = {}  # item -> its last REVIEWS_PER_ITEM event rows
        self._vectors: dict[str, npt.NDArray[np.float64]] = {}
        self._next = 0  # next rebuild time to apply
        self._folded = 0  # events [0, folded) are in _recent
        self.index: FaissItemIndex | None = None
        self.members: frozenset[str] = frozenset()

    def advance(self, now_ms: int) -> None:
        """Apply every rebuild at or before ``now_ms`` (events before each one only)."""
        tl = self._tl
        while self._next < len(tl.rebuilds) and tl.rebuilds[self._next] <= now_ms:
            cut = tl.rebuilds[self._next]
            touched: set[str] = set()
            while self._folded < len(tl.events) and tl.ts[self._folded] < cut:
                item = tl.events[self._folded].item_id
                rows = self._recent.setdefault(item, [])
                rows.append(self._folded)
                del rows[:-REVIEWS_PER_ITEM]
                touched.add(item)
                self._folded += 1
            emb = tl.scores.embedding
            for item in touched:
                mean = emb[self._recent[item]].astype(np.float64).sum(axis=0)
                if float(np.linalg.norm(mean)) > 1e-12:
                    self._vectors[item] = mean
                else:  # only empty texts so far: nothing to search with
                    self._vectors.pop(item, None)
            if touched:
                self.index = self._build(cut)
            self._next += 1

    def _build(self, cut: int) -> FaissItemIndex | None:
        ids = sorted(self._vectors)
        self.members = frozenset(ids)
        if not ids:
            return None
        built = dt.datetime.fromtimestamp(cut / 1000, dt.UTC).isoformat(timespec="seconds")
        return make_index(
            ids,
            np.vstack([self._vectors[i] for i in ids]),
            self._model_sha,
            exact_max=len(ids),  # always exact
            source=f"reviews before {iso_day(cut)}",
            version=f"backtest-{iso_day(cut)}",
            built_at=built,
            threads=1,
        )
