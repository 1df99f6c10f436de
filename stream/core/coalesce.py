"""Output throttling: at most one recommendation per user per interval, the latest state wins."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Coalescer:
    """At most one recommendation per user per interval; the latest state wins."""

    interval_ms: int
    last_emit: dict[str, int] = field(default_factory=dict)
    pending: dict[str, tuple[str, int]] = field(default_factory=dict)  # user -> (event_id, ts)

    def offer(self, user_id: str, event_id: str, event_ts: int, now: int) -> bool:
        """True: emit now. False: held back, ``due`` hands it out later."""
        last = self.last_emit.get(user_id)
        if last is None or now - last >= self.interval_ms:
            self.last_emit[user_id] = now
            self.pending.pop(user_id, None)
            return True
        self.pending[user_id] = (event_id, event_ts)
        return False

    def due(self, now: int) -> list[tuple[str, str, int]]:
        ready = [u for u in self.pending if now - self.last_emit.get(u, 0) >= self.interval_ms]
        out = []
        for user_id in ready:
            event_id, ts = self.pending.pop(user_id)
            self.last_emit[user_id] = now
            out.append((user_id, event_id, ts))
        return out

    def forget(self, user_id: str) -> None:
        self.last_emit.pop(user_id, None)
        self.pending.pop(user_id, None)
