"""A test-side lexicon for the simulator tests, written independently of the phrase banks."""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


# A test-side lexicon, written independently of the phrase banks' exact sentences.
NEGATIVE = set(
    words(
        "sad down heartbroken empty discouraged hopeless lonely miserable upset cry devastated "
        "low rough frustrating furious hate terrible annoyed livid ridiculous junk broken angry "
        "scream waste sick ruined died damaged bad worst disappointed regret avoid poor"
    )
)
POSITIVE = set(
    words(
        "love happy amazing thrilled fantastic wonderful proud best great fun blast excited "
        "grinning joy brilliant perfect solid lovely"
    )
)


def share_with(texts: list[str], lexicon: set[str]) -> float:
    """Fraction of texts with at least one lexicon word."""
    return sum(any(w in lexicon for w in words(t)) for t in texts) / max(len(texts), 1)
