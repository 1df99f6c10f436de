"""The helpers ``Processor`` folds with outside its state: a scored text's affect, the item-keyed
events and pair evidence it sends, and their reading back on the item side."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from stream.adapters.kafka import partition_of
from stream.core.emotion import arousal_from_emotions, ekman_from_emotions
from stream.core.state import ChatObs, ClickObs, ReviewObs, UserEvent, UserUpdate
from stream.ports import EKMAN, EMOTIONS, Scores

if TYPE_CHECKING:
    from stream.worker.processor import Decoded

# Deltas (events and pairs) per item-events message at most: a flush after a long stall must
# not outgrow the broker's 1 MB message limit (a delta is about 100 bytes of JSON).
DELTAS_PER_MESSAGE = 2048


def affect_of(scores: Scores, row: int, text: str) -> tuple[float, tuple[float, ...], float, float]:
    """Valence, Ekman mix, arousal and a confidence for one scored text."""
    if not text.strip():
        return 0.0, ekman_from_emotions([0.0] * len(EMOTIONS)), 0.0, 0.0
    sentiment = scores.sentiment[row]
    valence = float(sentiment[2] - sentiment[0])
    probs = np.asarray(scores.emotions[row], dtype=np.float64).tolist()
    confidence = float(np.max(sentiment))
    return valence, ekman_from_emotions(probs), arousal_from_emotions(probs), confidence


def add_pairs(items: dict[str, dict[str, Any]], update: UserUpdate, d: Decoded) -> None:
    """Add a fold's pair evidence to the item event of each ``source`` item, as
    ``"pairs": [[target, weight, ts(, source, offset)], ...]`` (no user id, as for the events;
    the source event's partition and offset let the item side apply each pair once)."""
    message = getattr(d.source, "message", None)
    where = [] if message is None else [f"{d.kind}:{message.partition}", int(message.offset)]
    for p in update.pairs:
        value = items.setdefault(p.source, {"item_id": p.source, "events": []})
        value.setdefault("pairs", []).append([p.target, p.weight, p.ts, *where])


def item_event(kind: str, d: Decoded, event: ReviewObs | ClickObs | ChatObs) -> dict[str, Any]:
    # No user id: item state needs none, and an erased user's id must not live on in it.
    rec: Any = d.record
    value: dict[str, Any] = {"kind": kind, "ts": rec.ts}
    message = getattr(d.source, "message", None)
    if message is not None:  # where it came from: the item side applies each delta once
        value["src"] = f"{kind}:{message.partition}"
        value["off"] = int(message.offset)
    if isinstance(event, ReviewObs):
        value.update(valence=event.valence, rating=event.rating, confidence=event.confidence)
    elif isinstance(event, ChatObs):
        value.update(valence=event.valence, confidence=event.confidence)
    else:
        value["action"] = event.action
    return value


def item_obs(item_id: str, value: dict[str, Any]) -> UserEvent:
    if value["kind"] == "reviews":
        return ReviewObs(
            value.get("user_id", ""),
            item_id,
            value["valence"],
            tuple([0.0] * len(EKMAN)),
            0.0,
            value.get("rating"),
            value["ts"],
            None,
            value.get("confidence", 1.0),
        )
    if value["kind"] == "chats":
        return ChatObs(
            value.get("user_id", ""),
            value["valence"],
            tuple([0.0] * len(EKMAN)),
            0.0,
            value["ts"],
            item_id,
            None,
            value.get("confidence", 1.0),
        )
    return ClickObs(value.get("user_id", ""), item_id, value["action"], 0, value["ts"])


def item_batches(
    values: dict[str, dict[str, Any]], partitions: int, limit: int = DELTAS_PER_MESSAGE
) -> list[tuple[int, list[dict[str, Any]]]]:
    """A flush's item values grouped by the partition their item id keys to, at most ``limit``
    deltas a message (an item's value is never split): one message per partition per flush
    instead of one per item. The item agent folds each value as before; sent to that
    partition, it writes each item to the store and changelog of the item's own partition."""
    out: list[tuple[int, list[dict[str, Any]]]] = []
    open_batch: dict[int, tuple[list[dict[str, Any]], list[int]]] = {}
    for item_id, value in values.items():
        p = partition_of(item_id.encode(), partitions)
        size = len(value["events"]) + len(value.get("pairs", ()))
        batch = open_batch.get(p)
        if batch is None or (batch[0] and batch[1][0] + size > limit):
            batch = ([], [0])
            open_batch[p] = batch
            out.append((p, batch[0]))
        batch[0].append(value)
        batch[1][0] += size
    return out
