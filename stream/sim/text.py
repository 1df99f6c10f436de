"""Review and chat wording: tone from the satisfaction band or mood, words from the phrase banks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from random import Random
from typing import Any

from stream.sim.catalog import Item
from stream.sim.common import clip
from stream.sim.phrases import (
    CATEGORY_BANKS,
    CHAT_TAILS,
    CHAT_TEMPLATES,
    REVIEW_CLOSERS,
    REVIEW_GENERIC_BAD,
    REVIEW_GENERIC_GOOD,
    REVIEW_OPENERS,
    REVIEW_STORIES,
)


def review_text(rng: Random, band: int, item: Item) -> str:
    """Opener and closer set the tone; the body mixes category aspects, service and a story.

    Length: log-normal around 55 words (mostly 30-120) with a long tail up to ~1000.
    """
    target = rng.lognormvariate(math.log(48), 0.45)
    if rng.random() < 0.05:
        target *= rng.uniform(2.0, 6.0)
    target = clip(target, 15, 1000)
    p_positive = (0.05, 0.2, 0.5, 0.85, 0.97)[band]
    bank = CATEGORY_BANKS[item.category]
    pools: dict[str, list[str]] = {
        "praise": list(bank.praise),
        "complaint": list(bank.complaints),
        "good": list(REVIEW_GENERIC_GOOD),
        "bad": list(REVIEW_GENERIC_BAD),
        "story": list(REVIEW_STORIES),
    }
    opener = rng.choice(REVIEW_OPENERS[band]).format(noun=item.noun)
    closer = rng.choice(REVIEW_CLOSERS[band]) if rng.random() < 0.8 else ""
    sentences = [opener]
    words = len(opener.split()) + len(closer.split())
    while words < target:
        roll = rng.random()
        positive = rng.random() < p_positive
        if roll < 0.5:
            name = "praise" if positive else "complaint"
        elif roll < 0.8:
            name = "good" if positive else "bad"
        else:
            name = "story"
        pool = pools[name]
        sentence = _draw(rng, pool) if pool else rng.choice(_refill(name, bank))
        sentences.append(sentence)
        words += len(sentence.split())
    if closer:
        sentences.append(closer)
    text = " ".join(sentences)
    if len(text) > 8000:  # schema limit is 8192; keep whole sentences
        text = text[: text.rfind(". ", 0, 8000) + 1]
    return text


def _draw(rng: Random, pool: list[str]) -> str:
    """Remove and return a random element (no repeats until the pool runs dry)."""
    i = rng.randrange(len(pool))
    pool[i], pool[-1] = pool[-1], pool[i]
    return pool.pop()


def _refill(name: str, bank: Any) -> Sequence[str]:
    return {
        "praise": bank.praise,
        "complaint": bank.complaints,
        "good": REVIEW_GENERIC_GOOD,
        "bad": REVIEW_GENERIC_BAD,
        "story": REVIEW_STORIES,
    }[name]


def chat_text(rng: Random, mood: str, noun: str) -> str:
    """One chat line of 8-20 words in the given mood."""
    text = rng.choice(CHAT_TEMPLATES[mood]).format(noun=noun)
    words = text.split()
    if len(words) < 8:
        text = f"{text}, {rng.choice(CHAT_TAILS[mood])}"
        words = text.split()
    if len(words) > 20:
        text = " ".join(words[:20])
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.3:
        text += "!" if mood in ("joyful", "angry") else "?" if mood == "neutral" else "..."
    return text
