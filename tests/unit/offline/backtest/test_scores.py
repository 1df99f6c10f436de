"""stream.offline.backtest.scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stream.offline import backtest as bt
from tests.unit.offline.backtest.helpers import (
    WordModel,
)


def test_scores_are_cached_per_model_and_texts(tmp_path: Path) -> None:
    texts = ["guitar good", "drums bad", "piano"]
    model = WordModel()
    cache = tmp_path / "m" / f"{bt.texts_key(texts)}.npz"
    first, hit = bt.score_texts(texts, model, cache_file=cache)
    assert not hit and model.scored == 3 and cache.is_file()
    again, hit = bt.score_texts(texts, model, cache_file=cache)
    assert hit and model.scored == 3
    np.testing.assert_array_equal(first.embedding, again.embedding)
    cache.write_bytes(b"corrupt")
    _, hit = bt.score_texts(texts, model, cache_file=cache)
    assert not hit and model.scored == 6
    assert bt.texts_key(texts) != bt.texts_key([*texts[:2], "piano good"])
