"""Per-item aggregates (affect, popularity, neighbour list) and their folds: ``fold_item`` and
``fold_item_pairs``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.core.affect import AffectObs, ItemAffect, fold_affect
from stream.core.neighbours import NeighbourParams, Neighbours, PairEvidence, fold_neighbours_many
from stream.core.observations import ChatObs, ClickObs, ReviewObs, UserEvent
from stream.core.popularity import PopObs, Popularity, PopularityWeights, fold_popularity
from stream.core.taste import EvidenceWeights, review_sentiment


@dataclass(frozen=True)
class ItemParams:
    affect_half_life_s: float = 90 * 86400.0
    popularity_half_life_s: float = 7 * 86400.0
    popularity: PopularityWeights = field(default_factory=PopularityWeights)
    rating_share: float = 0.0  # share of star ratings in item affect (0: the text's sentiment)
    # A chat about an item as a review of it at this weight, for affect and popularity
    # (``PopularityWeights.chat``); 0: chats leave items unchanged.
    chat_affect: float = 0.5
    neighbours: NeighbourParams = field(default_factory=NeighbourParams)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ItemParams:
        values: dict[str, Any] = {
            "affect_half_life_s": float(settings.affect_half_life_s),
            "popularity_half_life_s": float(settings.popularity_half_life_s),
        }
        values.update(overrides)
        return cls(**values)


@dataclass(frozen=True)
class ItemState:
    affect: ItemAffect = field(default_factory=ItemAffect)
    popularity: Popularity = field(default_factory=Popularity)
    neighbours: Neighbours = field(default_factory=Neighbours)

    def to_dict(self) -> dict[str, Any]:
        return {
            "affect": self.affect.to_dict(),
            "pop": self.popularity.to_dict(),
            "nb": self.neighbours.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemState:
        return cls(
            ItemAffect.from_dict(data["affect"]),
            Popularity.from_dict(data["pop"]),
            Neighbours.from_dict(data.get("nb") or {}),
        )


@dataclass(frozen=True)
class ItemUpdate:
    affect: float  # unshrunk mean sentiment of the item's reviews
    popularity: float  # decayed interaction score at the item's updated_at


def fold_item(
    state: ItemState, event: UserEvent, params: ItemParams
) -> tuple[ItemState, ItemUpdate]:
    """Fold an event about an item (key: ``event.item_id``); a chat about an item counts as a
    weaker review of it (``chat_affect``), a chat about nothing leaves items unchanged."""
    affect, pop = state.affect, state.popularity
    if isinstance(event, ReviewObs):
        valence = event.valence
        if event.rating is not None and params.rating_share > 0:
            share = EvidenceWeights(rating_share=params.rating_share)
            valence = review_sentiment(event.valence, event.rating, share)
        affect, _ = fold_affect(
            affect, AffectObs(valence, event.ts, event.confidence), params.affect_half_life_s
        )
        pop, _ = fold_popularity(
            pop, PopObs(event.ts, params.popularity.of("review")), params.popularity_half_life_s
        )
    elif isinstance(event, ClickObs):
        pop, _ = fold_popularity(
            pop, PopObs(event.ts, params.popularity.of(event.action)), params.popularity_half_life_s
        )
    elif isinstance(event, ChatObs) and event.item_id is not None and params.chat_affect:
        affect, _ = fold_affect(
            affect,
            AffectObs(event.valence, event.ts, event.confidence * params.chat_affect),
            params.affect_half_life_s,
        )
        pop, _ = fold_popularity(
            pop, PopObs(event.ts, params.popularity.of("chat")), params.popularity_half_life_s
        )
    new = ItemState(affect, pop, state.neighbours)
    return new, ItemUpdate(affect.mean(), pop.score)


def fold_item_pairs(
    state: ItemState, pairs: Sequence[PairEvidence], params: ItemParams
) -> tuple[ItemState, float]:
    """Fold pair evidence whose ``source`` is this item into its neighbour list (one prune for
    the batch); emits the last target's new score."""
    if not pairs:
        return state, 0.0
    nb, score = fold_neighbours_many(state.neighbours, pairs, params.neighbours)
    return ItemState(state.affect, state.popularity, nb), score
