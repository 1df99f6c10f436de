"""Model scores of the review texts, cached on disk."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from stream.offline.backtest.progress import NoSteps, Steps
from stream.ports import EMOTIONS, SENTIMENTS, Scores, SentimentModel

log = logging.getLogger(__name__)

SCORE_CHUNK = 256  # texts per predict() call while filling the cache (progress granularity)


def model_key(model: SentimentModel, model_dir: str | Path | None = None) -> str:
    """Names the model's outputs: sha256 of its card.json (which hashes every artifact) and the
    variant running (int8 and fp16 score slightly differently)."""
    h = hashlib.sha256()
    card = Path(model_dir) / "card.json" if model_dir else None
    if card is not None and card.is_file():
        h.update(card.read_bytes())
    else:
        h.update(model.version.encode("utf-8"))
    h.update(str(getattr(model, "variant", "")).encode("utf-8"))
    return h.hexdigest()[:16]


def texts_key(texts: Sequence[str]) -> str:
    h = hashlib.sha256()
    for text in texts:
        h.update(text.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()[:16]


def score_texts(
    texts: Sequence[str],
    model: SentimentModel,
    *,
    cache_file: Path | None = None,
    steps: Steps | None = None,
) -> tuple[Scores, bool]:
    """Scores for every text (row i = text i), from the cache when it holds them; (scores, hit).

    Texts are fed in length order, ``SCORE_CHUNK`` at a time, so each call pads little.
    """
    steps = steps or NoSteps()
    if cache_file is not None and cache_file.is_file():
        try:
            with np.load(cache_file) as data:
                scores = Scores(
                    data["sentiment"], data["emotions"], data["embedding"], data["truncated"]
                )
            if scores.sentiment.shape[0] == len(texts):
                return scores, True
            log.warning(
                "cache %s holds %d rows, not %d: rescoring",
                cache_file,
                scores.sentiment.shape[0],
                len(texts),
            )
        except (OSError, ValueError, KeyError) as exc:
            log.warning("cache %s is unreadable (%s): rescoring", cache_file, exc)
    n = len(texts)
    order = sorted(range(n), key=lambda i: len(texts[i]))
    parts: dict[str, npt.NDArray[Any]] = {}
    steps.start("scoring review texts", n)
    for start in range(0, n, SCORE_CHUNK):
        rows = order[start : start + SCORE_CHUNK]
        out = model.predict([texts[i] for i in rows])
        for name in ("sentiment", "emotions", "embedding", "truncated"):
            arr = np.asarray(getattr(out, name))
            if name not in parts:
                parts[name] = np.zeros((n, *arr.shape[1:]), dtype=arr.dtype)
            parts[name][rows] = arr
        steps.advance(len(rows))
    if not parts:
        parts = {
            "sentiment": np.zeros((0, len(SENTIMENTS)), np.float32),
            "emotions": np.zeros((0, len(EMOTIONS)), np.float32),
            "embedding": np.zeros((0, 0), np.float32),
            "truncated": np.zeros(0, np.bool_),
        }
    scores = Scores(parts["sentiment"], parts["emotions"], parts["embedding"], parts["truncated"])
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.{uuid.uuid4().hex[:8]}.tmp.npz")
        np.savez(
            tmp,
            sentiment=parts["sentiment"],
            emotions=parts["emotions"],
            embedding=parts["embedding"],
            truncated=parts["truncated"],
        )
        os.replace(tmp, cache_file)
    return scores, False
