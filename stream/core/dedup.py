"""Per-user memory of recent event ids, so a redelivered event is not counted twice.

Kafka's at-least-once delivery and producer retries both redeliver; the window is bounded in
count and in event time so the state stays small (a 64-bit hash per id, 12 bytes with its time).
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

from stream.core.digest import digest8_int

CAPACITY = 48
_ENTRY = struct.Struct("<QI")  # id hash, seconds since ``base_s``
_SPAN = 1 << 31


@dataclass(frozen=True)
class DedupState:
    entries: tuple[tuple[int, int], ...] = ()  # (id hash, ts in seconds), oldest first

    def to_dict(self) -> dict[str, object]:
        if not self.entries:
            return {"b": 0, "e": ""}
        base = min(ts for _, ts in self.entries)
        raw = b"".join(_ENTRY.pack(h, ts - base) for h, ts in self.entries)
        return {"b": base, "e": base64.b64encode(raw).decode("ascii")}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DedupState:
        raw = base64.b64decode(str(data.get("e", "")))
        base = int(str(data.get("b", 0)))
        return cls(tuple((h, base + dt) for h, dt in _ENTRY.iter_unpack(raw)))


def hash_id(event_id: str) -> int:
    return digest8_int(event_id)


def contains(state: DedupState, event_id: str) -> bool:
    key = hash_id(event_id)
    return any(h == key for h, _ in state.entries)


def fold(
    state: DedupState, event_id: str, ts_ms: int, *, window_s: int, capacity: int = CAPACITY
) -> tuple[DedupState, bool]:
    """Return the new state and whether the event is new (True) or a duplicate (False)."""
    key = hash_id(event_id)
    if any(h == key for h, _ in state.entries):
        return state, False
    now_s = max(ts_ms // 1000, 0)
    horizon = now_s - window_s
    # Entries are packed as offsets of 32 bits: one more than 68 years from this event is far
    # outside any window and would not fit beside it (a ts in the year 3000, then a ts of 0).
    kept = [(h, ts) for h, ts in state.entries if ts >= horizon and abs(ts - now_s) < _SPAN]
    kept.append((key, now_s))
    return DedupState(tuple(kept[-capacity:])), True
