"""The seeded catalog: items over the categories, Zipf popularity, copy from their own banks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from random import Random
from typing import Any

from stream.errors import ConfigError
from stream.sim.common import CATEGORIES, id_width, rng_for
from stream.sim.phrases import BRANDS, CATALOG_DETAILS, CATALOG_INTROS, CATEGORY_BANKS


@dataclass(frozen=True)
class Item:
    """A catalog item and its hidden attributes (popularity sums to 1 over the catalog)."""

    item_id: str
    title: str
    text: str
    category: str
    tags: tuple[str, ...]
    noun: str  # what a customer calls it ("amp", "set of strings")
    popularity: float
    quality: float

    def catalog_row(self) -> dict[str, Any]:
        """The catalog JSON line ``stream/catalog.py`` reads."""
        return {
            "item_id": self.item_id,
            "title": self.title,
            "text": self.text,
            "category": self.category,
            "tags": list(self.tags),
        }


def make_catalog(seed: int, n_items: int = 500, *, zipf_s: float = 0.9) -> list[Item]:
    """``n_items`` items over ``CATEGORIES`` (at least one each), with Zipf popularity."""
    if n_items < len(CATEGORIES):
        raise ConfigError(f"items must be >= {len(CATEGORIES)} (one per category)")
    rng = rng_for(seed, "catalog")
    counts = Counter(CATEGORIES)
    weights = [rng.uniform(0.7, 1.3) for _ in CATEGORIES]
    counts.update(rng.choices(CATEGORIES, weights=weights, k=n_items - len(CATEGORIES)))
    ranks = list(range(n_items))
    rng.shuffle(ranks)
    raw_pop = [1.0 / (r + 1) ** zipf_s for r in ranks]
    total_pop = sum(raw_pop)
    items: list[Item] = []
    for category in CATEGORIES:
        bank = CATEGORY_BANKS[category]
        width = id_width(counts[category])
        for number in range(1, counts[category] + 1):
            title_kind, kind, noun = rng.choice(bank.kinds)
            brand = rng.choice(BRANDS)
            model = f"{brand[0]}{rng.choice('ABCDEFGHJKLMNPRSTVX')}-{rng.randint(10, 99) * 10}"
            title = f"{brand} {model} {title_kind}"
            text = _catalog_text(rng, bank.features, bank.uses, title, kind)
            tags = list(dict.fromkeys([category, *rng.sample(bank.tags, rng.randint(2, 3))]))
            index = len(items)
            items.append(
                Item(
                    item_id=f"{bank.prefix}-{number:0{width}d}",
                    title=title,
                    text=text,
                    category=category,
                    tags=tuple(tags),
                    noun=noun,
                    popularity=raw_pop[index] / total_pop,
                    quality=round(rng.betavariate(3.0, 1.6), 4),
                )
            )
    return items


def _catalog_text(
    rng: Random, features: Sequence[str], uses: Sequence[str], title: str, kind: str
) -> str:
    """2-4 sentences, all from the category's own bank (keeps categories apart in embedding)."""
    n_sentences = rng.choice((2, 3, 3, 4))
    feats = rng.sample(list(features), 4)
    sentences = [
        rng.choice(CATALOG_INTROS).format(
            title=title, kind=kind, feature=feats[0], feature2=feats[1]
        )
    ]
    if n_sentences >= 3 and rng.random() < 0.6:
        sentences.append(rng.choice(CATALOG_DETAILS).format(feature=feats[2], feature2=feats[3]))
    sentences += rng.sample(list(uses), n_sentences - len(sentences))
    return " ".join(s[0].upper() + s[1:] for s in sentences)
