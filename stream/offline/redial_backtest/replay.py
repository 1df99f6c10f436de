"""ReDial backtest: the replay of a plan through the core, as the worker does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.core.board import ItemBoard
from stream.core.neighbours import EngagementWeights, NeighbourParams
from stream.core.rank import RankParams
from stream.core.state import (
    ChatObs,
    ItemParams,
    ItemState,
    UserParams,
    UserState,
    fold_item,
    fold_user,
    recommend,
)
from stream.core.taste import EvidenceWeights
from stream.offline import ranking_metrics
from stream.offline.backtest import (
    NEUTRAL_EKMAN,
    NoSteps,
    Steps,
    single_threaded_blas,
)
from stream.offline.backtest.simulate import fold_pairs
from stream.offline.redial_backtest.plan import Plan, Protocol, Step
from stream.offline.redial_backtest.variants import (
    FOREVER_S,
    NDCG_K,
    NO_MOOD,
    REVERSE_GAIN,
    RedialVariant,
)
from stream.ports import ItemIndex
from stream.settings import Settings
from stream.worker.item_events import affect_of


@dataclass(frozen=True)
class Params:
    evidence: EvidenceWeights = field(default_factory=EvidenceWeights)
    engagement: EngagementWeights = field(default_factory=EngagementWeights)
    rank: Mapping[str, float] = field(default_factory=dict)


def user_params(settings: Settings, params: Params) -> UserParams:
    nb = NeighbourParams(half_life_s=FOREVER_S, reverse_gain=REVERSE_GAIN)
    return UserParams.from_settings(
        settings,
        evidence=params.evidence,
        engagement=params.engagement,
        neighbours=nb,
    )


def item_params(settings: Settings) -> ItemParams:
    nb = NeighbourParams(half_life_s=FOREVER_S, reverse_gain=REVERSE_GAIN)
    return ItemParams.from_settings(settings, popularity_half_life_s=FOREVER_S, neighbours=nb)


class Replayer:
    """Folds chat observations and ranks exactly as the worker's ``Processor`` does: the core
    folds, an ``ItemBoard`` mirror of the item states, ``board.popular`` and ``recommend`` with
    the board as affect and neighbour lookup."""

    def __init__(
        self,
        index: ItemIndex,
        user_params: UserParams,
        item_params: ItemParams,
        n_candidates: int,
    ) -> None:
        self.index = index
        self.user_params = user_params
        self.item_params = item_params
        self.n_candidates = n_candidates
        self.board = ItemBoard(index.ids())
        self.users: dict[str, UserState] = {}
        self.items: dict[str, ItemState] = {}  # items the board lacks

    def _item(self, item_id: str) -> ItemState:
        if item_id in self.board:
            return self.board.state(item_id)
        return self.items.get(item_id) or ItemState()

    def _put(self, item_id: str, state: ItemState) -> None:
        if not self.board.put(item_id, state.affect, state.popularity, state.neighbours):
            self.items[item_id] = state

    def fold(self, obs: ChatObs) -> None:
        state, update = fold_user(self.users.get(obs.user_id) or UserState(), obs, self.user_params)
        self.users[obs.user_id] = state
        if obs.item_id is not None and obs.item_id in self.board:
            item, _ = fold_item(self._item(obs.item_id), obs, self.item_params)
            self._put(obs.item_id, item)
        fold_pairs(update.pairs, self._item, self._put, self.item_params)

    def vector(self, item_id: str | None) -> Any:
        if item_id is None or item_id not in self.board:
            return None
        return self.index.vectors([item_id])[0]

    def popular(self, rank_params: RankParams, now_ms: int) -> list[tuple[str, float]]:
        n = rank_params.top_k + self.user_params.seen_max
        return self.board.popular(n, now_ms, self.item_params.popularity_half_life_s)

    def recommend(self, user_id: str, now_ms: int, rank_params: RankParams) -> list[str]:
        state = self.users.get(user_id) or UserState()
        rec = recommend(
            state,
            index=self.index,
            affect=self.board,
            popular=self.popular(rank_params, now_ms),
            rank_params=rank_params,
            user_params=self.user_params,
            now_ms=now_ms,
            n_candidates=self.n_candidates,
            neighbours=self.board.neighbours_of,
        )
        return [i.item_id for i in rec.items]


def observe(plan: Plan, step: Step, variant: RedialVariant, vector: Any) -> ChatObs:
    """A chat step as the core sees it under the variant's sentiment source."""
    e = step.event
    assert e is not None
    valence, ekman, arousal, confidence = affect_of(plan.scores, step.text_row, e["text"])
    if variant.sentiment == "positive":
        valence, ekman, arousal, confidence = 1.0, NEUTRAL_EKMAN, 0.0, 1.0
    elif variant.sentiment == "liked" and step.liked is not None:
        valence, confidence = step.liked, 1.0
    return ChatObs(
        e["user_id"], valence, ekman, arousal, e["ts"], e.get("item_id"), vector, confidence
    )


@dataclass
class PointRanks:
    ranks: list[int] = field(default_factory=list)
    tops: list[tuple[str, ...]] = field(default_factory=list)


def replay(
    plan: Plan,
    variant: RedialVariant,
    params: Params,
    settings: Settings,
    protocol: Protocol,
    *,
    score: str = "dev",
    rank_overrides: Sequence[Mapping[str, float]] | None = None,
    steps: Steps | None = None,
) -> list[PointRanks]:
    """Fold every step in order; rank the test points of part ``score`` (``tune`` stops at the
    end of the train dialogues). One result per ranker setting."""
    steps = steps or NoSteps()
    overrides = list(rank_overrides) if rank_overrides is not None else [params.rank]
    extra = NO_MOOD if variant.sentiment == "positive" else {}
    rankers = [
        RankParams.from_settings(
            settings, variant=variant.ranker, top_k=protocol.depth, **{**o, **extra}
        )
        for o in overrides
    ]
    up = user_params(settings, params)
    r = Replayer(plan.index, up, item_params(settings), settings.candidates)
    out = [PointRanks() for _ in rankers]
    with single_threaded_blas():
        for step in plan.steps:
            if score == "tune" and step.part == "dev":
                break
            p = step.point
            if p is not None:
                if step.part != score:
                    continue
                for res, rp in zip(out, rankers, strict=True):
                    ids = r.recommend(p.user_id, p.before_ts, rp)
                    res.ranks.append(ranking_metrics.rank_in_list(ids, p.target, p.exclude))
                    shown = [i for i in ids if i not in p.exclude][:NDCG_K]
                    res.tops.append(tuple(shown))
                steps.advance(1)
                continue
            e = step.event
            assert e is not None
            r.fold(observe(plan, step, variant, r.vector(e.get("item_id"))))
    return out
