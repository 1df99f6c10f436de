"""The per-batch work both the Faust agents and ``moodstream replay`` do, over plain mappings.

Tables are ``MutableMapping``s of JSON-safe dicts (Faust tables in the worker, dicts in a
replay), so the same code folds the same events to the same state on either path. The model and
the index come in through their ports; the maths is in ``stream.core``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.core import dedup
from stream.core.emotion import arousal_from_emotions, ekman_from_emotions, emotion_at
from stream.core.popularity import top_popular
from stream.core.rank import RankParams
from stream.core.state import (
    ChatObs,
    ClickObs,
    ItemParams,
    ItemState,
    ReviewObs,
    UserEvent,
    UserParams,
    UserState,
    fold_item,
    fold_user,
    recommend,
)
from stream.errors import DeadLetter
from stream.ports import EKMAN, EMOTIONS, ItemIndex, Scores, SentimentModel
from stream.records import Chat, Click, Erasure, Review
from stream.settings import Settings

Table = MutableMapping[Any, Any]
POPULAR_REFRESH_MS = 1000


@dataclass(frozen=True)
class Decoded:
    """A validated input record; ``source`` is the Faust event it came from (None in replay)."""

    kind: str
    record: Review | Chat | Click | Erasure | Any
    source: Any = None


@dataclass
class Outcome:
    item_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[Decoded, DeadLetter]] = field(default_factory=list)
    duplicates: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    erased: list[str] = field(default_factory=list)
    triggers: dict[str, tuple[str, int]] = field(default_factory=dict)  # user -> (event_id, ts)


class Processor:
    """Scores texts in one model call per batch, folds events, ranks on demand."""

    def __init__(
        self,
        settings: Settings,
        model: SentimentModel,
        index: ItemIndex,
        *,
        rank_params: RankParams | None = None,
        user_params: UserParams | None = None,
        item_params: ItemParams | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.index = index
        self.rank_params = rank_params or RankParams.from_settings(settings)
        # Output throttling is the worker's job (wall clock); the core folds every event.
        self.user_params = user_params or UserParams.from_settings(
            settings, recommend_interval_ms=0
        )
        self.item_params = item_params or ItemParams.from_settings(settings)
        self._known = set(index.ids())
        self._popular: list[tuple[str, float]] = []
        self._item_cache: dict[str, tuple[Any, ItemState]] = {}
        self._popular_at = -POPULAR_REFRESH_MS

    def swap_index(self, index: ItemIndex) -> None:
        """Serve a new index version; item ids it lacks become unknown from now on."""
        self.index = index
        self._known = set(index.ids())

    # ------------------------------------------------------------------ user side
    def score(self, batch: Sequence[Decoded]) -> Scores | None:
        """One model call for every review and chat text of the batch, in batch order."""
        texts = [d.record.text for d in batch if d.kind in ("reviews", "chats")]
        return self.model.predict(texts) if texts else None

    def fold_batch(
        self,
        batch: Sequence[Decoded],
        scores: Scores | None,
        users: Table,
        seen: Table,
        now_ms: int,
        enter: Callable[[Decoded], None] | None = None,
    ) -> Outcome:
        """Fold a scored batch in order. ``enter(d)`` runs before each event's table writes
        (the worker uses it to tell Faust which partition's changelog they belong to)."""
        out = Outcome()
        row = 0
        for d in batch:
            if enter is not None:
                enter(d)
            text_row = -1
            if d.kind in ("reviews", "chats"):
                text_row, row = row, row + 1
            rec: Any = d.record
            if d.kind == "erasure":
                self._erase(rec.user_id, users, seen)
                out.erased.append(rec.user_id)
                out.triggers.pop(rec.user_id, None)
                out.counts["erasure"] = out.counts.get("erasure", 0) + 1
                continue
            item_id = getattr(rec, "item_id", None)
            if d.kind in ("reviews", "clicks") and item_id not in self._known:
                out.rejected.append(
                    (
                        d,
                        DeadLetter(
                            "unknown_item",
                            f"item_id {item_id!r} is not in index {self.index.version}",
                        ),
                    )
                )
                continue
            remembered = seen.get(rec.user_id)
            window = (
                dedup.DedupState()
                if remembered is None
                else (dedup.DedupState.from_dict(remembered))
            )
            window, new = dedup.fold(
                window, rec.event_id, rec.ts, window_s=self.settings.dedup_window_s
            )
            if not new:
                out.duplicates += 1
                continue
            event = self._observe(d, scores, text_row)
            raw = users.get(rec.user_id)
            state = UserState() if raw is None else UserState.from_dict(raw)
            state, _ = fold_user(state, event, self.user_params)
            # State first, then the dedup mark: a crash between the two changelog writes makes
            # the redelivered event count twice (at-least-once) instead of being dropped (loss).
            users[rec.user_id] = state.to_dict()
            seen[rec.user_id] = window.to_dict()
            if isinstance(event, (ReviewObs, ClickObs)):
                out.item_events.append((event.item_id, _item_event(d.kind, rec, event)))
            out.counts[d.kind] = out.counts.get(d.kind, 0) + 1
            out.triggers[rec.user_id] = (rec.event_id, rec.ts)
        return out

    def _erase(self, user_id: str, users: Table, seen: Table) -> None:
        for table in (users, seen):
            if user_id in table:
                del table[user_id]  # a tombstone in the changelog

    def _vector(self, item_id: str | None) -> Any:
        if item_id is None or item_id not in self._known:
            return None
        return self.index.vectors([item_id])[0]

    def _observe(self, d: Decoded, scores: Scores | None, row: int) -> UserEvent:
        rec: Any = d.record
        if d.kind == "clicks":
            return ClickObs(
                rec.user_id,
                rec.item_id,
                rec.action,
                rec.dwell_ms or 0,
                rec.ts,
                self._vector(rec.item_id),
            )
        assert scores is not None
        valence, ekman, arousal, confidence = affect_of(scores, row, rec.text)
        if d.kind == "reviews":
            return ReviewObs(
                rec.user_id,
                rec.item_id,
                valence,
                ekman,
                arousal,
                rec.rating,
                rec.ts,
                self._vector(rec.item_id),
                confidence,
            )
        return ChatObs(
            rec.user_id,
            valence,
            ekman,
            arousal,
            rec.ts,
            rec.item_id,
            self._vector(rec.item_id),
            confidence,
        )

    # ------------------------------------------------------------------ item side
    def item_state(self, item_id: str, items: Table) -> ItemState | None:
        """Parsed item state, memoised on the stored value (ranking reads ~100 per request)."""
        raw = items.get(item_id)
        if raw is None:
            return None
        hit = self._item_cache.get(item_id)
        if hit is not None and (hit[0] is raw or hit[0] == raw):
            return hit[1]
        state = ItemState.from_dict(raw)
        self._item_cache[item_id] = (raw, state)
        return state

    def fold_item(self, value: dict[str, Any], items: Table) -> None:
        item_id = value["item_id"]
        state = self.item_state(item_id, items) or ItemState()
        if value["kind"] == "reviews":
            event: UserEvent = ReviewObs(
                value["user_id"],
                item_id,
                value["valence"],
                tuple([0.0] * len(EKMAN)),
                0.0,
                value.get("rating"),
                value["ts"],
                None,
                value.get("confidence", 1.0),
            )
        else:
            event = ClickObs(value["user_id"], item_id, value["action"], 0, value["ts"])
        state, _ = fold_item(state, event, self.item_params)
        raw = state.to_dict()
        items[item_id] = raw
        self._item_cache[item_id] = (raw, state)

    # ------------------------------------------------------------------ recommend
    def popular(self, items: Table, now_ms: int) -> list[tuple[str, float]]:
        """Cached for a second: scanning every item per recommendation would not scale."""
        if now_ms - self._popular_at >= POPULAR_REFRESH_MS:
            pops = ((k, ItemState.from_dict(v).popularity) for k, v in list(items.items()))
            n = self.rank_params.top_k + self.user_params.seen_max
            self._popular = top_popular(pops, n, now_ms, self.item_params.popularity_half_life_s)
            self._popular_at = now_ms
        return self._popular

    def recommend(
        self,
        user_id: str,
        trigger_event_id: str,
        trigger_ts: int,
        users: Table,
        items: Table,
        now_ms: int,
    ) -> dict[str, Any] | None:
        """The recommendation value for the output topic, or None for an unknown/erased user."""
        raw = users.get(user_id)
        if raw is None:
            return None
        state = UserState.from_dict(raw)

        def affect(item_id: str) -> Any:
            item = self.item_state(item_id, items)
            return None if item is None else item.affect

        result = recommend(
            state,
            index=self.index,
            affect=affect,
            popular=self.popular(items, now_ms),
            rank_params=self.rank_params,
            user_params=self.user_params,
            now_ms=now_ms,
            n_candidates=self.settings.candidates,
        )
        mood = emotion_at(state.emotion, now_ms, self.user_params.half_lives)
        emotion = {
            **result.emotion.to_dict(),
            "ekman": {k: round(v, 4) for k, v in zip(EKMAN, mood.ekman, strict=True)},
        }
        return {
            "user_id": user_id,
            "ts": now_ms,
            "trigger_event_id": trigger_event_id,
            "items": [item.to_dict() for item in result.items],
            "emotion": emotion,
            "ranker": result.variant,
            "fallback": result.cold,
            "model_version": self.model.version,
            "index_version": self.index.version,
            "latency_ms": float(max(now_ms - trigger_ts, 0)),
        }


def affect_of(scores: Scores, row: int, text: str) -> tuple[float, tuple[float, ...], float, float]:
    """Valence, Ekman mix, arousal and a confidence for one scored text."""
    if not text.strip():
        return 0.0, ekman_from_emotions([0.0] * len(EMOTIONS)), 0.0, 0.0
    sentiment = scores.sentiment[row]
    valence = float(sentiment[2] - sentiment[0])
    probs = np.asarray(scores.emotions[row], dtype=np.float64).tolist()
    confidence = float(np.max(sentiment))
    return valence, ekman_from_emotions(probs), arousal_from_emotions(probs), confidence


def _item_event(kind: str, rec: Any, event: ReviewObs | ClickObs) -> dict[str, Any]:
    value: dict[str, Any] = {
        "kind": kind,
        "item_id": event.item_id,
        "user_id": rec.user_id,
        "ts": rec.ts,
    }
    if isinstance(event, ReviewObs):
        value.update(valence=event.valence, rating=event.rating, confidence=event.confidence)
    else:
        value["action"] = event.action
    return value
