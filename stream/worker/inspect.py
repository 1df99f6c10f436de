"""A user's state as an operator reads it: mood now, taste summary, recent items.

Served on the worker's local-only web port (``/users/<id>``) and printed by ``moodstream state``:
the way to see why a user got the list they got without decoding changelog records by hand.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stream.core.emotion import emotion_at
from stream.ports import EKMAN
from stream.worker.processor import Processor, load_user

NEAREST = 5


def user_view(user_id: str, raw: Any, processor: Processor, now_ms: int) -> dict[str, Any] | None:
    """The JSON view of a stored user record, or None when the worker holds none for them."""
    if raw is None:
        return None
    state, window = load_user(raw)
    decayed = emotion_at(state.emotion, now_ms, processor.user_params.half_lives)
    mood = decayed.summary()
    taste = state.taste
    query = taste.query()
    nearest: list[dict[str, Any]] = []
    if query is not None:
        scores, ids = processor.index.search(np.asarray(query, dtype=np.float32)[None, :], NEAREST)
        nearest = [
            {"item_id": item, "relevance": round(float(score), 4)}
            for item, score in zip(ids[0], scores[0], strict=False)
            if item
        ]
    return {
        "user_id": user_id,
        "emotion": {
            "valence": round(mood.valence, 4),
            "arousal": round(mood.arousal, 4),
            "dominant": mood.dominant,
            "ekman": dict(zip(EKMAN, (round(x, 4) for x in decayed.ekman), strict=True)),
            "weight": round(mood.weight, 4),
            "updated_at": state.emotion.updated_at,
        },
        "taste": {
            "cold": query is None,
            "weight": round(taste.weight, 4),
            "positive_weight": round(taste.pull, 4),
            "updated_at": taste.updated_at,
            "nearest_items": nearest,
        },
        "recent_items": recent_items(state.seen.digests, processor),
        "recent_event_ids": len(window.entries),
    }


def recent_items(digests: bytes, processor: Processor) -> list[str]:
    """The user's seen list, newest first, as item ids (digests the index does not know are
    shown as ``?<hex>``: an item dropped by an index rebuild)."""
    board = processor.board
    by_digest = {int(d): i for i, d in enumerate(board.digests.tolist())}
    out = []
    for start in range(len(digests) - 8, -1, -8):
        chunk = digests[start : start + 8]
        row = by_digest.get(int(np.frombuffer(chunk, dtype="<u8")[0]))
        out.append(board.ids[row] if row is not None else "?" + chunk.hex())
    return out
