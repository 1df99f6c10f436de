"""Seeded simulation of a music-gear shop: a catalog, users with latent tastes and drifting moods,
and a time-ordered stream of reviews, chats and clicks that validate against the topic schemas.

It exists so the demo, load benchmarks and tests have data whose hidden causes are known:
``Simulation.truth()`` says what each user really likes, so a test can check that the recommender
recovers it better than popularity. Pure: no Kafka, no files, no wall clock; the same seed gives
the same catalog, users and events.

Randomness comes in independent streams (catalog, users, events, clock, bad values), so the catalog
does not change with the number of users, ``rate`` changes only timestamps, and ``bad_rate`` only
adds values between otherwise identical events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from stream.sim.bad_values import corrupt
from stream.sim.common import CATEGORIES, KINDS, MAX_TS, encode_value, pick, rng_for
from stream.sim.events import EventModel, Message, SimEvent, Step
from stream.sim.phrases import MOODS
from stream.sim.users import UserState

_ID_LETTER = {"reviews": "r", "chats": "c", "clicks": "k"}
_REVIEW_PENDING = 0.7  # chance a review goes to a user who bought in-stream and has not reviewed


class Simulation(EventModel):
    """A catalog, users and their event stream; iterate ``events()`` or ``messages()``.

    Each iteration starts from scratch (same seed -> same events); ``truth()`` describes the
    latest iteration (so far, if it was not exhausted).
    """

    def events(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(kind, value)`` pairs in time order; every value is valid for its topic."""
        for event in self.generate():
            yield event.kind, event.value

    def messages(self) -> Iterator[Message]:
        """Encoded values keyed by user_id, with bad values injected at ``config.bad_rate``."""
        rng = rng_for(self.config.seed, "bad")
        bad_rate = self.config.bad_rate
        for event in self.generate():
            raw = encode_value(event.value)
            key = event.value["user_id"].encode("utf-8")
            ts = event.value["ts"]
            yield Message(event.kind, key, raw, ts)
            if bad_rate > 0 and rng.random() < bad_rate:
                bad_kind, bad_value = corrupt(rng, event)
                self._counts["bad"] += 1
                self._counts[f"bad.{bad_kind}"] += 1
                yield Message(event.kind, key, bad_value, ts, bad_kind)

    def generate(self) -> Iterator[SimEvent]:
        """Events with their hidden causes (``SimEvent.latent``), for tests and analysis."""
        cfg = self.config
        rng = rng_for(cfg.seed, "events")
        clock = rng_for(cfg.seed, "clock")
        self._states = [UserState(valence=u.base_valence) for u in self.users]
        self._counts = Counter()
        self._last_ts = None
        pending_users: list[int] = []  # users with bought-but-unreviewed items
        pending_pos: dict[int, int] = {}
        min_gap = 1 if cfg.rate <= 1000 else 0  # strictly increasing while 1 ms can hold it
        limit_ms = None if cfg.duration_s is None else cfg.duration_s * 1000.0
        elapsed = 0.0
        seq = 0
        prev_ts = cfg.start_ms - 1
        while cfg.n_events is None or seq < cfg.n_events:
            elapsed += clock.expovariate(cfg.rate) * 1000.0
            ts = max(prev_ts + min_gap, cfg.start_ms + int(elapsed)) if seq else cfg.start_ms
            if limit_ms is not None and ts - cfg.start_ms >= limit_ms:
                break
            if ts >= MAX_TS:
                break
            prev_ts = ts
            kind = KINDS[pick(rng, self._kind_cum)]
            if kind == "reviews" and pending_users and rng.random() < _REVIEW_PENDING:
                u = pending_users[rng.randrange(len(pending_users))]
            else:
                u = pick(rng, self._user_cum)
            state = self._states[u]
            mood, spell = self._step_mood(rng, u, state, ts)
            event_id = f"{cfg.prefix}{_ID_LETTER[kind]}-{seq + 1:08d}"
            step = Step(rng, u, state, ts, event_id, mood, spell)
            if kind == "clicks":
                value, latent = self._click(step)
                if value["action"] == "purchase" and u not in pending_pos:
                    pending_pos[u] = len(pending_users)
                    pending_users.append(u)
            elif kind == "reviews":
                value, latent = self._review(step)
                if not state.pending and u in pending_pos:  # swap-remove
                    pos = pending_pos.pop(u)
                    last = pending_users.pop()
                    if last != u:
                        pending_users[pos] = last
                        pending_pos[last] = pos
            else:
                value, latent = self._chat(step)
            seq += 1
            self._counts[kind] += 1
            self._last_ts = ts
            yield SimEvent(kind, value, latent)

    def truth(self) -> dict[str, Any]:
        """Ground truth of the latest iteration, JSON-ready (floats rounded to 6 places)."""
        states = self._states or [UserState(valence=u.base_valence) for u in self.users]
        users: dict[str, Any] = {}
        for user, state in zip(self.users, states, strict=True):
            n = state.events
            users[user.user_id] = {
                "taste": {c: round(p, 6) for c, p in zip(CATEGORIES, user.taste, strict=True)},
                "top_categories": user.top_categories(3),
                "liked_categories": [
                    c
                    for c, p in sorted(
                        zip(CATEGORIES, user.taste, strict=True), key=lambda cp: -cp[1]
                    )
                    if p >= 0.15
                ],
                "quality_sensitivity": round(user.quality_sensitivity, 6),
                "activity": round(user.activity, 6),
                "events": n,
                "mood": {
                    "base_valence": round(user.base_valence, 6),
                    "mean_valence": round(state.valence_sum / n, 6) if n else None,
                    "min_valence": round(state.valence_min, 6) if n else None,
                    "max_valence": round(state.valence_max, 6) if n else None,
                    "final_valence": round(state.valence, 6),
                    "share": {m: round(state.moods[m] / n, 6) for m in MOODS} if n else {},
                    "spells": state.spells,
                },
                "purchases": state.purchases,
                "reviewed": state.reviewed,
            }
        cfg = self.config
        return {
            "seed": cfg.seed,
            "config": {
                "users": cfg.n_users,
                "items": cfg.n_items,
                "events": cfg.n_events,
                "duration_s": cfg.duration_s,
                "rate": cfg.rate,
                "mix": str(cfg.mix),
                "start_ms": cfg.start_ms,
                "bad_rate": cfg.bad_rate,
                "id_prefix": cfg.prefix,
            },
            "categories": list(CATEGORIES),
            "item_category": {item.item_id: item.category for item in self.catalog},
            "items": {
                item.item_id: {
                    "category": item.category,
                    "quality": item.quality,
                    "popularity": round(item.popularity, 8),
                }
                for item in self.catalog
            },
            "users": users,
            "counts": dict(sorted(self._counts.items())),
            "last_ts": self._last_ts,
        }

    # -- one event of each kind -----------------------------------------------------------------
