"""Ranker variants under test and the fixed weights of the untuned ones."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from stream.core.taste import EvidenceWeights
from stream.errors import ConfigError


@dataclass(frozen=True)
class RankerVariant:
    """What every backtest varies: a name, the ranker, where sentiment comes from, whether the
    tuned weights apply, and a line for the report (each backtest reads ``sentiment`` its way)."""

    name: str
    ranker: str
    sentiment: str
    tuned: bool = True
    about: str = ""


@dataclass(frozen=True)
class Variant(RankerVariant):
    """One system configuration under test.

    ``sentiment``: where review sentiment comes from: ``model`` (the text, scored by the model),
    ``stars`` (the star rating, (stars - 3) / 2: an oracle for the model's valence) or ``none``.
    ``stars``: also hand the rating to the core, which then blends it into taste evidence.
    ``tuned``: uses the evidence and rank weights chosen by tuning (else the fixed ones below).
    """

    stars: bool = False


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "popularity",
            "popularity",
            "none",
            tuned=False,
            about="decayed review counts, same list for everyone (cold-start baseline)",
        ),
        Variant(
            "taste_only",
            "taste_only",
            "none",
            tuned=False,
            about="taste vector where every review pulls (no model sentiment), no re-rank",
        ),
        Variant(
            "item_cf",
            "item_cf",
            "positive",
            tuned=False,
            about="neighbours of the user's recent items (every review liked), popularity fill",
        ),
        Variant(
            "seed_formula",
            "seed_formula",
            "model",
            about="the seeds' z = w * r * s on model sentiment",
        ),
        Variant(
            "sentiment_aware",
            "default",
            "model",
            about="the full system: model sentiment in taste, mood and item affect; re-rank",
        ),
        Variant(
            "sentiment_aware_no_sentiment",
            "default",
            "positive",
            about="sentiment_aware with every review counted positive and mood ignored",
        ),
        Variant(
            "rating_oracle",
            "default",
            "stars",
            about="sentiment_aware with the star rating in place of the model's valence",
        ),
        Variant(
            "sentiment_stars",
            "default",
            "model",
            stars=True,
            about="sentiment_aware with the rating also sent (the core blends it in)",
        ),
    )
}
DEFAULT_VARIANTS: tuple[str, ...] = tuple(VARIANTS)
BASELINES: tuple[str, ...] = ("popularity", "taste_only")
TUNED_ON = "sentiment_aware"

# taste_only: every review is positive evidence of the same size, whatever it says
NO_SENTIMENT = EvidenceWeights(review_gain=0.0)
# sentiment "positive" (every review liked): mood ignored too, and item affect (all +1) off
NO_MOOD: dict[str, float] = {"comfort_gain": 0.0, "explore_gain": 0.0, "affect_weight": 0.0}


def parse_variants(
    text: str | None,
    known: Iterable[str] = VARIANTS,
    default: tuple[str, ...] = DEFAULT_VARIANTS,
) -> tuple[str, ...]:
    """Comma-separated variant names (deduplicated, in order) among ``known``; ``default`` when
    ``text`` is empty."""
    if not text:
        return default
    known = list(known)
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ConfigError(
            f"unknown variant(s) {', '.join(unknown) or '(none)'}; known: {', '.join(known)}"
        )
    return names
