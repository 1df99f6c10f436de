"""Faust records mirroring ``schemas/*.v1.json``: the schema is the contract, these are its types.

Values are validated against the JSON Schema before a record is built (``decoding``), so
records carry no validation of their own.
"""

from __future__ import annotations

from typing import Any

import faust


class _Record(faust.Record, serializer="json", include_metadata=False):
    def to_json_dict(self) -> dict[str, Any]:
        """The value as its schema expects it: optional fields that are unset are left out."""
        return _drop_none(self.to_representation())


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value]
    if isinstance(value, _Record):
        return value.to_json_dict()
    return value


class Review(_Record):
    event_id: str
    user_id: str
    item_id: str
    text: str
    ts: int
    rating: int | None = None


class Chat(_Record):
    event_id: str
    user_id: str
    text: str
    session_id: str
    ts: int
    item_id: str | None = None


class Click(_Record):
    event_id: str
    user_id: str
    item_id: str
    action: str
    ts: int
    dwell_ms: int | None = None


class Erasure(_Record):
    user_id: str
    ts: int
    event_id: str | None = None
    reason: str | None = None


class RankedItemRecord(_Record):
    item_id: str
    score: float
    relevance: float
    affect: float


class EmotionSummaryRecord(_Record):
    valence: float
    arousal: float
    dominant: str
    ekman: dict[str, float]
    weight: float


class Recommendation(_Record):
    user_id: str
    ts: int
    trigger_event_id: str
    items: list[RankedItemRecord]
    emotion: EmotionSummaryRecord
    ranker: str
    fallback: bool
    model_version: str
    index_version: str
    latency_ms: float


class DeadLetterRecord(_Record):
    source_topic: str
    partition: int
    offset: int
    error_kind: str
    error_message: str
    raw: str
    raw_encoding: str
    raw_bytes: int
    raw_truncated: bool
    ts: int
    key: str | None = None


# topic short name -> (schema file, record type)
CONTRACTS: dict[str, tuple[str, type[_Record]]] = {
    "reviews": ("reviews.v1.json", Review),
    "chats": ("chats.v1.json", Chat),
    "clicks": ("clicks.v1.json", Click),
    "erasure": ("erasure.v1.json", Erasure),
    "recommendations": ("recommendations.v1.json", Recommendation),
    "deadletter": ("deadletter.v1.json", DeadLetterRecord),
}
