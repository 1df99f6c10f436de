"""Replay of the timeline through the core under one variant."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.core.emotion import normalise_ekman
from stream.core.neighbours import Neighbours, PairEvidence
from stream.core.popularity import Popularity, top_popular
from stream.core.rank import RankParams
from stream.core.state import (
    ItemParams,
    ItemState,
    ReviewObs,
    UserParams,
    UserState,
    fold_item,
    fold_item_pairs,
    fold_user,
    recommend,
)
from stream.core.taste import EvidenceWeights, review_valence
from stream.offline.backtest.progress import NoSteps, Steps
from stream.offline.backtest.protocol import Protocol
from stream.offline.backtest.timeline import Snapshots, Timeline
from stream.offline.backtest.variants import NO_MOOD, Variant
from stream.ports import EKMAN
from stream.settings import Settings

NEUTRAL_EKMAN = normalise_ekman([0.0] * len(EKMAN))


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Keep BLAS on one thread: the ranker's small matmuls (MMR similarities, ~200 x 384) ran
    10-40x slower with OpenBLAS's threads on a busy 2-core machine (0.4 ms vs 4-18 ms)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the run is only slower
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


@dataclass(frozen=True)
class Params:
    """What a variant runs with: the core's evidence weights and ranking weights."""

    evidence: EvidenceWeights = field(default_factory=EvidenceWeights)
    rank: Mapping[str, float] = field(default_factory=dict)  # RankParams overrides


@dataclass
class PointResults:
    """Per test point of one variant (order: the timeline's test points)."""

    ranks: npt.NDArray[np.int64]  # 1-based rank of the target in the list, 0 = absent
    top: list[tuple[str, ...]]  # the top-K item ids
    catalog: npt.NDArray[np.int64]  # items in the index at the point


def observe(
    tl: Timeline, i: int, variant: Variant, vector: Any, evidence: EvidenceWeights
) -> ReviewObs:
    """Event i as the core sees it under ``variant``'s sentiment source (the model's valence
    calibrated as the worker does)."""
    e = tl.events[i]
    valence, ekman, arousal, confidence = tl.model_obs[i]
    valence = review_valence(valence, confidence, evidence)
    if variant.sentiment == "stars":
        valence = 0.0 if e.rating is None else (e.rating - 3) / 2.0
        confidence = 1.0
    elif variant.sentiment == "none":
        valence, ekman, arousal, confidence = 0.0, NEUTRAL_EKMAN, 0.0, 1.0
    elif variant.sentiment == "positive":  # every review liked, no mood
        valence, ekman, arousal, confidence = 1.0, NEUTRAL_EKMAN, 0.0, 1.0
    rating = e.rating if variant.stars else None
    return ReviewObs(
        e.user_id, e.item_id, valence, ekman, arousal, rating, e.ts, vector, confidence
    )


def simulate(
    tl: Timeline,
    variant: Variant,
    params: Params,
    settings: Settings,
    protocol: Protocol,
    **kwargs: Any,
) -> list[PointResults]:
    """Replay the timeline through the core under one variant; one result per ranker setting.

    ``rank_overrides``: several RankParams settings ranked from the same states (tuning); by
    default the single ``params.rank``. ``until_ms``: stop before the first group at that time.
    ``top_k``: length of the ranked lists (default ``protocol.depth``).
    """
    with single_threaded_blas():
        return _simulate(tl, variant, params, settings, protocol, **kwargs)


def _simulate(
    tl: Timeline,
    variant: Variant,
    params: Params,
    settings: Settings,
    protocol: Protocol,
    *,
    rank_overrides: Sequence[Mapping[str, float]] | None = None,
    top_k: int | None = None,
    until_ms: int | None = None,
    steps: Steps | None = None,
    model_sha: str = "",
) -> list[PointResults]:
    steps = steps or NoSteps()
    overrides = list(rank_overrides) if rank_overrides is not None else [params.rank]
    depth = top_k or protocol.depth
    extra = NO_MOOD if variant.sentiment == "positive" else {}
    rankers = [
        RankParams.from_settings(settings, variant=variant.ranker, top_k=depth, **{**o, **extra})
        for o in overrides
    ]
    user_params = UserParams.from_settings(settings, evidence=params.evidence)
    replay = _Replay(tl, variant, rankers, user_params, ItemParams.from_settings(settings))
    snaps = Snapshots(tl, model_sha)
    pop_n = depth + user_params.seen_max
    for start, end in tl.groups:
        now = int(tl.ts[start])
        if until_ms is not None and now >= until_ms:
            break
        snaps.advance(now)
        tests = [i for i in range(start, end) if tl.test[i]]
        if tests:
            replay.rank(tests, snaps, now, pop_n, settings.candidates, protocol.k)
            steps.advance(len(tests))
        replay.fold(range(start, end), snaps)
    cat = np.asarray(replay.catalog, dtype=np.int64)
    return [
        PointResults(np.asarray(r, dtype=np.int64), t, cat)
        for r, t in zip(replay.ranks, replay.tops, strict=True)
    ]


class _Replay:
    """The core's states during one replay, and what was ranked at the test points so far."""

    def __init__(
        self,
        tl: Timeline,
        variant: Variant,
        rankers: list[RankParams],
        user_params: UserParams,
        item_params: ItemParams,
    ) -> None:
        self.tl, self.variant, self.rankers = tl, variant, rankers
        self.user_params, self.item_params = user_params, item_params
        self.users: dict[str, UserState] = {}
        self.items: dict[str, ItemState] = {}
        self.pops: dict[str, Popularity] = {}
        self.ranks: list[list[int]] = [[] for _ in rankers]
        self.tops: list[list[tuple[str, ...]]] = [[] for _ in rankers]
        self.catalog: list[int] = []

    def affect(self, item_id: str) -> Any:
        state = self.items.get(item_id)
        return None if state is None else state.affect

    def neighbours(self, item_id: str) -> Neighbours | None:
        state = self.items.get(item_id)
        return None if state is None or not state.neighbours.scores else state.neighbours

    def rank(
        self, tests: list[int], snaps: Snapshots, now: int, pop_n: int, candidates: int, k: int
    ) -> None:
        """Rank every test point of a group from the states before it, with every ranker."""
        members = snaps.members
        popular = top_popular(
            ((key, p) for key, p in self.pops.items() if key in members),
            pop_n,
            now,
            self.item_params.popularity_half_life_s,
        )
        for i in tests:
            e = self.tl.events[i]
            state = self.users[e.user_id]
            self.catalog.append(len(members))
            for r, rp in enumerate(self.rankers):
                rec = recommend(
                    state,
                    index=snaps.index,
                    affect=self.affect,
                    popular=popular,
                    rank_params=rp,
                    user_params=self.user_params,
                    now_ms=now,
                    n_candidates=candidates,
                    neighbours=self.neighbours,
                    members=members,
                )
                ids = [x.item_id for x in rec.items]
                self.ranks[r].append(ids.index(e.item_id) + 1 if e.item_id in ids else 0)
                self.tops[r].append(tuple(ids[:k]))

    def fold(self, rows: range, snaps: Snapshots) -> None:
        """Fold the events ``rows`` into the user and item states."""
        index = snaps.index
        for i in rows:
            e = self.tl.events[i]
            vector = None
            if index is not None and e.item_id in snaps.members:
                vector = index.vectors([e.item_id])[0]
            obs = observe(self.tl, i, self.variant, vector, self.user_params.evidence)
            state = self.users.get(e.user_id) or UserState()
            self.users[e.user_id], update = fold_user(state, obs, self.user_params)
            item = self.items.get(e.item_id) or ItemState()
            self.items[e.item_id], _ = fold_item(item, obs, self.item_params)
            self.pops[e.item_id] = self.items[e.item_id].popularity
            self.fold_pairs(update.pairs)

    def fold_pairs(self, pairs: Sequence[PairEvidence]) -> None:
        fold_pairs(pairs, self._item, self.items.__setitem__, self.item_params)

    def _item(self, item_id: str) -> ItemState:
        return self.items.get(item_id) or ItemState()


def fold_pairs(
    pairs: Iterable[PairEvidence],
    get: Callable[[str], ItemState],
    put: Callable[[str, ItemState], None],
    params: ItemParams,
) -> None:
    """Pair evidence into each source item's neighbour list, one fold per source item as the
    item agent does; ``get``/``put`` read and write the replay's item states."""
    by_source: dict[str, list[PairEvidence]] = {}
    for p in pairs:
        by_source.setdefault(p.source, []).append(p)
    for source, mine in by_source.items():
        state, _ = fold_item_pairs(get(source), mine, params)
        put(source, state)
