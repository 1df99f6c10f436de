"""The per-batch work both the Faust agents and ``moodstream replay`` do, over plain mappings.

Tables are ``MutableMapping``s of JSON-safe dicts (Faust tables in the worker, dicts in a
replay), so the same code folds the same events to the same state on either path. The model and
the index come in through their ports; the maths is in ``stream.core``.

A user's record holds the state and the window of event ids already folded, so that both reach
the changelog in one write: a crash can then never keep one without the other. Item state is
mirrored in an ``ItemBoard`` (arrays by index row) that ranking reads; the ``items`` table stays
the durable record and ``reload_items`` rebuilds the board from it after a recovery.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream.contract.records import Chat, Click, Erasure, Review
from stream.core import applied, dedup
from stream.core.board import ItemBoard
from stream.core.neighbours import PairEvidence
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
    fold_item_pairs,
    fold_user,
    recommend_many,
)
from stream.core.taste import review_valence
from stream.errors import DeadLetter
from stream.ports import EKMAN, ItemIndex, Scores, SentimentModel
from stream.settings import Settings
from stream.worker.item_events import add_pairs, affect_of, item_event, item_obs

Table = MutableMapping[Any, Any]
POPULAR_REFRESH_MS = 1000
POPULAR_RETRY_MS = 50  # while nothing is popular yet: a fresh system's first item events


@dataclass(frozen=True)
class Decoded:
    """A validated input record; ``source`` is the Faust event it came from (None in replay)."""

    kind: str
    record: Review | Chat | Click | Erasure | Any
    source: Any = None


@dataclass
class Outcome:
    # One value per item touched by the batch, its events in batch order (see ``fold_item``).
    item_events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    rejected: list[tuple[Decoded, DeadLetter]] = field(default_factory=list)
    duplicates: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    erased: list[str] = field(default_factory=list)
    before_erasure: int = 0  # events no newer than their user's erasure: dropped, never folded
    triggers: dict[str, tuple[str, int]] = field(default_factory=dict)  # user -> (event_id, ts)
    states: dict[str, UserState] = field(default_factory=dict)  # each trigger's user after it


@dataclass(frozen=True)
class Request:
    """A recommendation to make: for whom, after which event, and their state if known."""

    user_id: str
    event_id: str
    ts: int
    state: UserState | None = None


def load_user(raw: Any) -> tuple[UserState, dedup.DedupState]:
    """A stored user record: the state and its window of folded event ids."""
    if raw is None:
        return UserState(), dedup.DedupState()
    ids = raw.get("ids")
    window = dedup.DedupState() if ids is None else dedup.DedupState.from_dict(ids)
    return UserState.from_dict(raw), window


def dump_user(
    state: UserState, window: dedup.DedupState, erased_at: int | None = None
) -> dict[str, Any]:
    record = {**state.to_dict(), "ids": window.to_dict()}
    if erased_at is not None:
        record["erased_at"] = erased_at
    return record


def erased_at_of(raw: Any, erasures: Table, user_id: str) -> int | None:
    """The event time of the user's last erasure: their record carries it once they are back;
    before that only the ``erasures`` table knows it."""
    if raw is not None:
        at = raw.get("erased_at")
        return None if at is None else int(at)
    at = erasures.get(user_id)
    return None if at is None else int(at)


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
        self.user_params = user_params or UserParams.from_settings(settings)
        self.item_params = item_params or ItemParams.from_settings(settings)
        self.board = ItemBoard(index.ids())
        self._popular: list[tuple[str, float]] = []
        self._popular_at = -POPULAR_REFRESH_MS

    def swap_index(self, index: ItemIndex, items: Table | None = None) -> None:
        """Serve a new index version; item ids it lacks become unknown from now on."""
        self.index = index
        self.board = ItemBoard(index.ids())
        if items is not None:
            self.reload_items(items)

    def reload_items(self, items: Table) -> int:
        """Rebuild the board from the ``items`` table (after a recovery); items loaded."""
        self.board.clear()
        self._popular_at = -POPULAR_REFRESH_MS
        loaded = 0
        for item_id, raw in list(items.items()):
            if raw is not None:
                state = ItemState.from_dict(raw)
                loaded += self.board.put(item_id, state.affect, state.popularity, state.neighbours)
        return loaded

    # ------------------------------------------------------------------ user side
    def chunks(self, batch: Sequence[Decoded]) -> list[list[Decoded]]:
        """Cut a batch, in order, into as few pieces as hold at most ``batch_size`` texts each,
        of even size (49 texts: 25 + 24, not 32 + 17; small model batches cost more per text).
        Events without text ride along. The worker scores one piece while it folds the last."""
        n_texts = sum(d.kind in ("reviews", "chats") for d in batch)
        pieces = max(1, -(-n_texts // max(self.settings.batch_size, 1)))
        base, extra = divmod(n_texts, pieces)
        sizes = iter([base + (i < extra) for i in range(pieces)][1:])  # texts of pieces 2..n
        cap = base + (extra > 0)
        out: list[list[Decoded]] = [[]]
        texts = 0
        for d in batch:
            if d.kind in ("reviews", "chats"):
                if texts == cap:
                    out.append([])
                    texts, cap = 0, next(sizes)
                texts += 1
            out[-1].append(d)
        return [c for c in out if c]

    def score(self, batch: Sequence[Decoded]) -> Scores | None:
        """One model call for every review and chat text of the batch, in batch order."""
        texts = [d.record.text for d in batch if d.kind in ("reviews", "chats")]
        return self.model.predict(texts) if texts else None

    def fold_batch(
        self,
        batch: Sequence[Decoded],
        scores: Scores | None,
        users: Table,
        now_ms: int,
        enter: Callable[[Decoded], None] | None = None,
        erasures: Table | None = None,
    ) -> Outcome:
        """Fold a scored batch in order, writing each user's record once, after their last
        event. ``enter(d)`` runs before a table read or write (the worker uses it to tell Faust
        which partition's store and changelog it belongs to); the batch is acknowledged only
        after it returns. ``erasures`` keeps each erased user's erasure time: topics have no
        mutual order, so a chat older than the erasure may arrive after it and is dropped."""
        out = Outcome()
        erasures = {} if erasures is None else erasures
        held: dict[str, tuple[UserState, dedup.DedupState, Decoded, int | None]] = {}
        items: dict[str, dict[str, Any]] = {}
        row = 0
        for d in batch:
            text_row = -1
            if d.kind in ("reviews", "chats"):
                text_row, row = row, row + 1
            rec: Any = d.record
            if d.kind == "erasure":
                held.pop(rec.user_id, None)
                if enter is not None:
                    enter(d)
                if rec.user_id in users:
                    del users[rec.user_id]  # a tombstone in the changelog
                before = erasures.get(rec.user_id)
                erasures[rec.user_id] = max(int(rec.ts), -1 if before is None else int(before))
                out.erased.append(rec.user_id)
                out.triggers.pop(rec.user_id, None)
                out.states.pop(rec.user_id, None)
                out.counts["erasure"] = out.counts.get("erasure", 0) + 1
                continue
            if rec.user_id in held:
                state, window, _, erased_at = held[rec.user_id]
            else:
                if enter is not None:
                    enter(d)  # RocksDB reads the store of the entered event's partition
                raw = users.get(rec.user_id)
                state, window = load_user(raw)
                erased_at = erased_at_of(raw, erasures, rec.user_id)
            if erased_at is not None and int(rec.ts) <= erased_at:
                out.before_erasure += 1  # dropped before any dead letter could copy its text
                continue
            item_id = getattr(rec, "item_id", None)
            if d.kind in ("reviews", "clicks") and item_id not in self.board:
                problem = f"item_id {item_id!r} is not in index {self.index.version}"
                out.rejected.append((d, DeadLetter("unknown_item", problem)))
                continue
            window, new = dedup.fold(
                window, rec.event_id, rec.ts, window_s=self.settings.dedup_window_s
            )
            if not new:
                out.duplicates += 1
                continue
            event = self._observe(d, scores, text_row)
            state, update = fold_user(state, event, self.user_params)
            held[rec.user_id] = (state, window, d, erased_at)
            if isinstance(event, (ReviewObs, ClickObs)) or (
                isinstance(event, ChatObs) and event.item_id in self.board
            ):
                item_id = str(event.item_id)
                value = items.setdefault(item_id, {"item_id": item_id, "events": []})
                value["events"].append(item_event(d.kind, d, event))
            add_pairs(items, update, d)
            out.counts[d.kind] = out.counts.get(d.kind, 0) + 1
            out.triggers[rec.user_id] = (rec.event_id, rec.ts)
        for user_id, (state, window, last, erased_at) in held.items():
            if enter is not None:
                enter(last)
            users[user_id] = dump_user(state, window, erased_at)
            out.states[user_id] = state
        out.item_events = list(items.items())
        return out

    def already_folded(self, d: Decoded, users: Table) -> bool:
        """Whether the user's record already holds this event id: a redelivered text need not
        be scored again (folding checks again, so this only saves model time)."""
        rec: Any = d.record
        raw = users.get(rec.user_id)
        if raw is None or raw.get("ids") is None:
            return False
        return dedup.contains(dedup.DedupState.from_dict(raw["ids"]), rec.event_id)

    def _vector(self, item_id: str | None) -> Any:
        if item_id is None or item_id not in self.board:
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
                review_valence(valence, confidence, self.user_params.evidence),
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
    def item_state(self, item_id: str, items: Table) -> ItemState:
        """The board answers for indexed items; the table for ids an index swap dropped."""
        if item_id in self.board:
            return self.board.state(item_id)
        raw = items.get(item_id)
        return ItemState() if raw is None else ItemState.from_dict(raw)

    def fold_item(self, value: dict[str, Any], items: Table, *, to_board: bool = True) -> int:
        """Fold one item's deltas (``Outcome.item_events``, possibly several pieces' worth)
        with one table write; returns how many were dropped as already applied.

        A delta that names its source (``src``: input topic kind and partition, ``off``: the
        input offset) is applied once: the record keeps the offsets applied per source as a few
        ranges (``stream.core.applied``), written together with the state, so a redelivered
        delta is recognised after a crash of either side, and a refetched gap is still let in.
        ``to_board=False``: the board is fed from the changelog instead (the worker's
        ``BoardFeed``); a replay keeps its own board here."""
        item_id = value["item_id"]
        raw = items.get(item_id)
        state = ItemState() if raw is None else ItemState.from_dict(raw)
        marks = {} if raw is None else applied.from_record(raw)
        before = dict(marks)  # applied.add returns new lists: these stay as they were
        dropped = 0
        for obs in value["events"]:
            src = obs.get("src")
            if src is not None:
                off = int(obs["off"])
                if applied.contains(marks.get(src, []), off):
                    dropped += 1
                    continue
                marks[src] = applied.add(marks.get(src, []), off)
            state, _ = fold_item(state, item_obs(item_id, obs), self.item_params)
        pairs = []
        for t, w, ts, *where in value.get("pairs", ()):
            if where:  # checked against the marks before this value: its deltas share them
                src, off = str(where[0]), int(where[1])
                if applied.contains(before.get(src, []), off):
                    dropped += 1
                    continue
                marks[src] = applied.add(marks.get(src, []), off)
            pairs.append(PairEvidence(item_id, str(t), float(w), int(ts)))
        if pairs:
            state, _ = fold_item_pairs(state, pairs, self.item_params)
        if dropped == len(value["events"]) + len(value.get("pairs", ())) and raw is not None:
            return dropped  # nothing new: no write
        record = state.to_dict()
        if marks:
            record["applied"] = marks
        if value.get("since") is not None:
            record["at"] = value["since"]  # when its oldest delta was folded: board freshness
        items[item_id] = record
        if to_board:
            self.board.put(item_id, state.affect, state.popularity, state.neighbours)
        return dropped

    # ------------------------------------------------------------------ recommend
    def popular(self, now_ms: int) -> list[tuple[str, float]]:
        """Cached for a second: every recommendation reads it. An empty list is retried soon:
        cached for a second, it gave every cold user of a new system's first second an empty
        list although their items' events had been folded meanwhile."""
        stale = POPULAR_REFRESH_MS if self._popular else POPULAR_RETRY_MS
        if now_ms - self._popular_at >= stale:
            n = self.rank_params.top_k + self.user_params.seen_max
            hl = self.item_params.popularity_half_life_s
            self._popular = self.board.popular(n, now_ms, hl)
            self._popular_at = now_ms
        return self._popular

    def recommend(
        self,
        user_id: str,
        trigger_event_id: str,
        trigger_ts: int,
        users: Table,
        now_ms: int,
        state: UserState | None = None,
    ) -> dict[str, Any] | None:
        """The recommendation value for the output topic, or None for an unknown/erased user.

        ``state``: the user's state when the caller has it (``Outcome.states``), saving a read.
        """
        request = Request(user_id, trigger_event_id, trigger_ts, state)
        return self.recommend_many([request], users, now_ms)[0]

    def recommend_many(
        self, requests: Sequence[Request], users: Table, now_ms: int
    ) -> list[dict[str, Any] | None]:
        """``recommend`` for many users, ranked together (one index search for all)."""
        states: list[UserState | None] = []
        for r in requests:
            state = r.state
            if state is None:
                raw = users.get(r.user_id)
                state = None if raw is None else load_user(raw)[0]
            states.append(state)
        known = [s for s in states if s is not None]
        results = iter(
            recommend_many(
                known,
                index=self.index,
                affect=self.board,
                popular=self.popular(now_ms),
                rank_params=self.rank_params,
                user_params=self.user_params,
                now_ms=now_ms,
                n_candidates=self.settings.candidates,
                neighbours=self.board.neighbours_of,
            )
        )
        out: list[dict[str, Any] | None] = []
        for r, state in zip(requests, states, strict=True):
            if state is None:
                out.append(None)
                continue
            result = next(results)
            emotion = {
                **result.emotion.to_dict(),
                "ekman": {k: round(v, 4) for k, v in zip(EKMAN, result.mood.ekman, strict=True)},
            }
            out.append(
                {
                    "user_id": r.user_id,
                    "ts": now_ms,
                    "trigger_event_id": r.event_id,
                    "items": [item.to_dict() for item in result.items],
                    "emotion": emotion,
                    "ranker": result.variant,
                    "fallback": result.cold,
                    "model_version": self.model.version,
                    "index_version": self.index.version,
                    "latency_ms": float(max(now_ms - r.ts, 0)),
                }
            )
        return out
