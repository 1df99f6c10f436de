"""Phrase banks for the simulator: catalog copy, reviews and chats of a music-gear shop.

The words live in ``phrases.json`` next to this module (package data), loaded once at import.
Catalog text is built only from its category's bank, so items of one category share vocabulary and
land close together under a sentence encoder while categories stay apart. Review wording is keyed
by a satisfaction band (0 = furious .. 4 = delighted) and chat wording by mood, so a sentiment model
has something real to recover. Slots: ``{title}``, ``{kind}``, ``{feature}``, ``{feature2}``,
``{noun}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

DATA_FILE = "phrases.json"


@dataclass(frozen=True)
class CategoryBank:
    """Everything the simulator says about one category."""

    prefix: str  # item id prefix: ``amp`` -> ``amp-0042``
    nouns: tuple[str, ...]  # what a customer calls it in a chat ("my amp")
    kinds: tuple[tuple[str, str, str], ...]  # (title suffix, descriptive phrase, short noun)
    features: tuple[str, ...]  # noun phrases for "... with {feature}"
    uses: tuple[str, ...]  # whole sentences about who/what it is for
    tags: tuple[str, ...]
    praise: tuple[str, ...]  # category-specific review sentences, positive
    complaints: tuple[str, ...]  # category-specific review sentences, negative

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryBank:
        kinds = tuple(_triple(k) for k in data["kinds"])
        return cls(
            prefix=str(data["prefix"]),
            nouns=_strings(data["nouns"]),
            kinds=kinds,
            features=_strings(data["features"]),
            uses=_strings(data["uses"]),
            tags=_strings(data["tags"]),
            praise=_strings(data["praise"]),
            complaints=_strings(data["complaints"]),
        )


def _strings(values: list[Any]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _triple(values: list[Any]) -> tuple[str, str, str]:
    title, phrase, noun = values
    return str(title), str(phrase), str(noun)


def _by_key(data: dict[str, list[Any]]) -> dict[str, tuple[str, ...]]:
    return {key: _strings(values) for key, values in data.items()}


def _load() -> dict[str, Any]:
    text = resources.files(__package__ or "stream.sim").joinpath(DATA_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


_DATA = _load()

CATEGORY_BANKS: dict[str, CategoryBank] = {
    name: CategoryBank.from_dict(bank) for name, bank in _DATA["category_banks"].items()
}
BRANDS: tuple[str, ...] = _strings(_DATA["brands"])
CATALOG_INTROS: tuple[str, ...] = _strings(_DATA["catalog_intros"])
CATALOG_DETAILS: tuple[str, ...] = _strings(_DATA["catalog_details"])
# One tuple per satisfaction band, 0 (furious) .. 4 (delighted).
REVIEW_OPENERS: tuple[tuple[str, ...], ...] = tuple(_strings(b) for b in _DATA["review_openers"])
REVIEW_CLOSERS: tuple[tuple[str, ...], ...] = tuple(_strings(b) for b in _DATA["review_closers"])
REVIEW_GENERIC_GOOD: tuple[str, ...] = _strings(_DATA["review_generic_good"])
REVIEW_GENERIC_BAD: tuple[str, ...] = _strings(_DATA["review_generic_bad"])
REVIEW_STORIES: tuple[str, ...] = _strings(_DATA["review_stories"])
MOODS: tuple[str, ...] = _strings(_DATA["moods"])
CHAT_TEMPLATES: dict[str, tuple[str, ...]] = _by_key(_DATA["chat_templates"])
# Appended when a filled chat template is shorter than the chat length floor.
CHAT_TAILS: dict[str, tuple[str, ...]] = _by_key(_DATA["chat_tails"])
del _DATA
