"""ReDial backtest: the variants under test and the tuning axes."""

from __future__ import annotations

from dataclasses import dataclass

from stream.offline.backtest.variants import RankerVariant
from stream.offline.backtest.variants import parse_variants as parse_names

KS = (1, 10, 50)
NDCG_K = 10
FOREVER_S = float("inf")  # dialogues have no dates: popularity and neighbours never forget
# In a chat the order in which two movies come up says nothing about which leads to which, so
# co-mentions count both ways (directed only: Recall@10 0.155 instead of 0.169 on the dev part).
REVERSE_GAIN = 1.0


@dataclass(frozen=True)
class RedialVariant(RankerVariant):
    """``sentiment``: ``model`` (the seeker's text), ``positive`` (every mention is liked, mood
    ignored), ``liked`` (the questionnaire: liked +1, disliked -1, else the model)."""


VARIANTS: dict[str, RedialVariant] = {
    v.name: v
    for v in (
        RedialVariant(
            "popularity", "popularity", "positive", False, "mentions so far, same list for all"
        ),
        RedialVariant(
            "taste_only", "taste_only", "positive", False, "nearest movies to the taste vector"
        ),
        RedialVariant(
            "item_cf",
            "item_cf",
            "positive",
            False,
            "neighbours of the seeker's mentioned movies alone, popularity fill",
        ),
        RedialVariant(
            "sentiment_aware",
            "default",
            "model",
            about="the full system: taste + neighbours + popularity candidates, model sentiment "
            "in engagements, taste, mood and item affect",
        ),
        RedialVariant(
            "sentiment_aware_no_sentiment",
            "default",
            "positive",
            about="sentiment_aware with every mention counted positive and mood ignored",
        ),
        RedialVariant(
            "rating_oracle",
            "default",
            "liked",
            about="sentiment_aware with the seeker's questionnaire 'liked' as the sentiment of "
            "their mentions (upper bound: the questionnaire comes after the dialogue)",
        ),
    )
}
DEFAULT_VARIANTS: tuple[str, ...] = tuple(VARIANTS)
BASELINES: tuple[str, ...] = ("popularity", "sentiment_aware_no_sentiment")
TUNED_ON = "sentiment_aware"
# mood ignored: no comfort, no exploring, no item affect (all mentions would read +1)
NO_MOOD = {"comfort_gain": 0.0, "explore_gain": 0.0, "affect_weight": 0.0}

RANK_AXES: dict[str, tuple[float, ...]] = {
    "neighbour_weight": (1.0, 0.5, 2.0, 4.0),
    "popularity_weight": (0.5, 0.2, 1.0, 2.0),
    "affect_weight": (1.0, 0.0, 0.3),
    "mmr_lambda": (0.8, 1.0),
}
ENGAGEMENT_AXES: dict[str, tuple[float, ...]] = {
    "chat_interest": (0.5, 0.0, 0.8),
    "chat_gain": (0.6, 0.3),
}
MIN_GAIN = 0.01
TUNE_KEY = "recall@10"


def parse_variants(text: str | None) -> tuple[str, ...]:
    return parse_names(text, VARIANTS, DEFAULT_VARIANTS)
