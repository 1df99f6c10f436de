"""ReDial (Li et al., 2018) movie-recommendation chats as moodstream events and test points.

Why here: conversations are the one real data set where a user's *chat* says what they like
and the next item is known (the recommender's suggestion), so they test the chat path of the
core the way the Amazon reviews test the review path.

- ``load_redial(folder)``: both published forms of the sample, the raw messages and the
  ``_cfcrs_mergedturns`` variant (consecutive messages of one sender merged; ``turn_id`` instead
  of ``messageId``/``timeOffset``; extra CRS annotations, which are ignored), into ``Dialogue``
  objects ordered by conversationId. The questionnaires are returned apart, never as input.
- ``chat_events``: seeker turns become ``moodstream.chats.v1`` values: one event per movie the
  turn mentions (item context), one without ``item_id`` when it mentions none. Why per movie:
  "I loved @1 and @2" is evidence about both, and the taste and neighbour folds take one item
  per event. The cost: such a turn's mood is folded once per movie (16% of seeker turns that
  mention a movie mention several, on this sample).
- ``eval_points``: each movie a recommender turn mentions, when the seeker has spoken before
  it, not yet mentioned in the dialogue; scored against the list the system shows just before
  that turn, over all movies, the dialogue's earlier mentions excluded.
- ``split_dialogues``: the last ``dev_share`` of dialogues by conversationId are dev.
- ``item_documents``: movie names plus the text around their mentions in training dialogues.

Dialogues have no dates. Synthetic event time: dialogue k (in conversationId order) starts at
``start_ms + k * DIALOGUE_GAP_MS``; a turn is at start + timeOffset seconds (+ its position in
ms, so times strictly increase); merged turns have no timeOffset and use their index in seconds.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.errors import DatasetError

RAW_FILE = "redial_train_partial.jsonl"
MERGED_FILE = "redial_train_partial_cfcrs_mergedturns.jsonl"
MOVIES_FILE = "movies_with_mentions.csv"
SEEKER, RECOMMENDER = "seeker", "recommender"
DIALOGUE_GAP_MS = 3_600_000  # one hour per dialogue: longer than any dialogue (max 1,769 s)
START_MS = 1_500_000_000_000  # 2017-07-14, about when ReDial was collected
MENTION = re.compile(r"@(\d+)")


@dataclass(frozen=True)
class Turn:
    role: str  # "seeker" or "recommender"
    text: str
    movies: tuple[str, ...]  # movie ids mentioned (``@id``), first mention order, no repeats
    offset_s: int  # seconds since the dialogue started (merged form: the turn's index)
    message_ids: tuple[int, ...] = ()  # raw form: the message; merged form: empty


@dataclass(frozen=True)
class Dialogue:
    conversation_id: str
    seeker_id: int
    recommender_id: int
    turns: tuple[Turn, ...]
    mentions: Mapping[str, str] = field(default_factory=dict)  # movieMentions: id -> name
    form: str = "raw"  # "raw" or "merged"

    @property
    def user_id(self) -> str:
        """Per-dialogue seeker id: ReDial worker ids recur across dialogues, but nothing says
        the same person's taste carried over, so each dialogue is its own cold user."""
        return f"redial-seeker-{self.conversation_id}"


@dataclass(frozen=True)
class Answer:
    suggested: int  # 0/1
    seen: int  # 0 no, 1 yes, 2 not said
    liked: int  # 0 disliked, 1 liked, 2 not said


@dataclass(frozen=True)
class Questionnaire:
    """Per movie, what each side answered after the chat. Labels for analysis, never input."""

    conversation_id: str
    seeker: Mapping[str, Answer]
    recommender: Mapping[str, Answer]


@dataclass(frozen=True)
class RedialData:
    dialogues: tuple[Dialogue, ...]  # ordered by conversationId (as an integer)
    questionnaires: Mapping[str, Questionnaire]  # by conversationId
    movies: Mapping[str, str]  # id -> name: movies_with_mentions.csv plus every movieMentions
    skipped: Mapping[str, int]  # reason -> count (bad lines, foreign senders, ...)


def mentioned(text: str) -> tuple[str, ...]:
    """Movie ids a text mentions as ``@id``, in order of first mention."""
    return tuple(dict.fromkeys(MENTION.findall(text)))


def _answers(raw: Any) -> dict[str, Answer]:
    if not isinstance(raw, Mapping):  # {} or [] when empty
        return {}
    out = {}
    for movie, a in raw.items():
        if isinstance(a, Mapping):
            out[str(movie)] = Answer(
                int(a.get("suggested", 0)), int(a.get("seen", 2)), int(a.get("liked", 2))
            )
    return out


def parse_dialogue(
    obj: Mapping[str, Any], skipped: dict[str, int] | None = None
) -> tuple[Dialogue, Questionnaire]:
    """One JSON line of either form. Messages from neither worker are dropped (counted)."""
    skipped = {} if skipped is None else skipped
    cid = str(obj["conversationId"])
    seeker, rec = int(obj["initiatorWorkerId"]), int(obj["respondentWorkerId"])
    messages = obj.get("messages") or []
    merged = any("turn_id" in m for m in messages) and not any("timeOffset" in m for m in messages)
    turns = []
    for pos, m in enumerate(messages):
        sender = int(m["senderWorkerId"])
        if sender not in (seeker, rec):
            skipped["foreign_sender"] = skipped.get("foreign_sender", 0) + 1
            continue
        text = str(m.get("text") or "")
        offset = int(m.get("turn_id", pos)) if merged else int(m.get("timeOffset", pos))
        ids = () if merged or "messageId" not in m else (int(m["messageId"]),)
        turns.append(
            Turn(SEEKER if sender == seeker else RECOMMENDER, text, mentioned(text), offset, ids)
        )
    mentions = obj.get("movieMentions") or {}
    names = {str(k): str(v) for k, v in mentions.items()} if isinstance(mentions, Mapping) else {}
    dialogue = Dialogue(cid, seeker, rec, tuple(turns), names, "merged" if merged else "raw")
    quest = Questionnaire(
        cid, _answers(obj.get("initiatorQuestions")), _answers(obj.get("respondentQuestions"))
    )
    return dialogue, quest


def merge_turns(dialogue: Dialogue) -> Dialogue:
    """Consecutive turns of one side as one turn (what the merged form did to its dialogues)."""
    out: list[Turn] = []
    for t in dialogue.turns:
        if out and out[-1].role == t.role:
            last = out[-1]
            out[-1] = Turn(
                t.role,
                f"{last.text} {t.text}",
                tuple(dict.fromkeys((*last.movies, *t.movies))),
                last.offset_s,
                (*last.message_ids, *t.message_ids),
            )
        else:
            out.append(t)
    return Dialogue(
        dialogue.conversation_id,
        dialogue.seeker_id,
        dialogue.recommender_id,
        tuple(out),
        dialogue.mentions,
        dialogue.form,
    )


def load_dialogues(
    path: str | Path, skipped: dict[str, int] | None = None
) -> tuple[list[Dialogue], dict[str, Questionnaire]]:
    """One JSON-lines file; bad lines are counted in ``skipped`` and left out."""
    skipped = {} if skipped is None else skipped
    dialogues, quests = [], {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    for line in lines:
        if not line.strip():
            continue
        try:
            d, q = parse_dialogue(json.loads(line), skipped)
        except (ValueError, KeyError, TypeError, AttributeError):
            skipped["bad_line"] = skipped.get("bad_line", 0) + 1
            continue
        dialogues.append(d)
        quests[d.conversation_id] = q
    return dialogues, quests


def _cid_key(cid: str) -> tuple[int, str]:
    return (int(cid), cid) if cid.isdigit() else (1 << 62, cid)


def load_movies(path: str | Path) -> dict[str, str]:
    """``movies_with_mentions.csv``: movieId -> movieName."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = csv.DictReader(fh)
            return {str(r["movieId"]): " ".join(str(r["movieName"]).split()) for r in rows}
    except (OSError, KeyError, csv.Error) as exc:
        raise DatasetError(f"cannot read movies from {path}: {exc}") from exc


def load_redial(folder: str | Path, forms: Sequence[str] = ("raw", "merged")) -> RedialData:
    """The sample in ``folder``: every file of ``forms`` present, one dialogue per
    conversationId (the raw form wins a duplicate), ordered by conversationId."""
    folder = Path(folder)
    files = {"raw": folder / RAW_FILE, "merged": folder / MERGED_FILE}
    skipped: dict[str, int] = {}
    by_id: dict[str, Dialogue] = {}
    quests: dict[str, Questionnaire] = {}
    found = False
    for form in forms:
        path = files[form]
        if not path.exists():
            continue
        found = True
        ds, qs = load_dialogues(path, skipped)
        for d in ds:
            if d.conversation_id in by_id:
                skipped["duplicate_dialogue"] = skipped.get("duplicate_dialogue", 0) + 1
                continue
            by_id[d.conversation_id] = d
            quests[d.conversation_id] = qs[d.conversation_id]
    if not found:
        raise DatasetError(f"no ReDial dialogue file in {folder}")
    movies = load_movies(folder / MOVIES_FILE) if (folder / MOVIES_FILE).exists() else {}
    dialogues = tuple(sorted(by_id.values(), key=lambda d: _cid_key(d.conversation_id)))
    for d in dialogues:
        for movie, name in d.mentions.items():
            movies.setdefault(movie, " ".join(name.split()))
    return RedialData(dialogues, quests, movies, skipped)


# ----------------------------------------------------------------------------- split


def split_dialogues(
    dialogues: Sequence[Dialogue], dev_share: float = 0.1
) -> tuple[list[Dialogue], list[Dialogue]]:
    """(train, dev): the last ``dev_share`` by conversationId are dev, like a temporal split
    (conversationIds grow with collection time). Deterministic, no seed."""
    if not 0.0 <= dev_share < 1.0:
        raise ValueError("dev_share must be in [0, 1)")
    ordered = sorted(dialogues, key=lambda d: _cid_key(d.conversation_id))
    cut = len(ordered) - round(len(ordered) * dev_share)
    return ordered[:cut], ordered[cut:]


# ----------------------------------------------------------------------------- events


def turn_times(dialogue: Dialogue, start_ms: int) -> list[int]:
    """Synthetic epoch ms of each turn: start + offset, strictly increasing, inside one gap."""
    out: list[int] = []
    for pos, t in enumerate(dialogue.turns):
        ts = start_ms + min(max(t.offset_s, 0) * 1000 + pos, DIALOGUE_GAP_MS - 1)
        out.append(max(ts, out[-1] + 1) if out else ts)
    return out


def dialogue_starts(dialogues: Sequence[Dialogue], start_ms: int = START_MS) -> dict[str, int]:
    """Start time of each dialogue: ``start_ms + k * DIALOGUE_GAP_MS`` in conversationId order."""
    ordered = sorted(dialogues, key=lambda d: _cid_key(d.conversation_id))
    return {d.conversation_id: start_ms + k * DIALOGUE_GAP_MS for k, d in enumerate(ordered)}


def chat_events(
    dialogue: Dialogue, start_ms: int, *, reply_context: bool = False
) -> list[dict[str, Any]]:
    """The seeker's turns as ``moodstream.chats.v1`` values, in order.

    One event per mentioned movie (``item_id``; all share the turn's text and time), or one
    without ``item_id`` for a turn that mentions none. ``session_id`` is the conversationId.

    ``reply_context``: a seeker turn that mentions no movie, right after a recommender turn
    that did, is about those movies ("Oh I loved that one!"), as a platform that shows the
    suggestion knows; it then gets one event per movie of that recommender turn.
    """
    out: list[dict[str, Any]] = []
    last_rec: tuple[str, ...] = ()
    for i, (t, ts) in enumerate(zip(dialogue.turns, turn_times(dialogue, start_ms), strict=True)):
        if t.role != SEEKER:
            last_rec = t.movies
            continue
        movies = t.movies or (last_rec if reply_context else ())
        last_rec = ()
        base = {
            "user_id": dialogue.user_id,
            "text": t.text,
            "session_id": f"redial-{dialogue.conversation_id}",
            "ts": ts,
        }
        if not movies:
            out.append({"event_id": f"redial-{dialogue.conversation_id}-{i}", **base})
        for j, movie in enumerate(movies):
            eid = f"redial-{dialogue.conversation_id}-{i}-{j}"
            out.append({"event_id": eid, **base, "item_id": movie})
    return out


@dataclass(frozen=True)
class EvalPoint:
    """One recommender mention to predict.

    ``before_ts``: rank with the state folded from events with ts < before_ts (the turn's own
    time); ``history``: how many of the dialogue's chat events that is; ``exclude``: movies
    mentioned earlier in the dialogue by either side (the target never among them).
    """

    conversation_id: str
    user_id: str
    turn: int  # index of the recommender turn in ``Dialogue.turns``
    target: str
    before_ts: int
    history: int
    exclude: frozenset[str]


def eval_points(
    dialogue: Dialogue, start_ms: int, *, min_seeker_turns: int = 1
) -> tuple[list[EvalPoint], dict[str, int]]:
    """Test points of one dialogue and counts of the mentions left out, by reason:
    ``repeat`` (mentioned earlier in the dialogue), ``no_context`` (the seeker had not spoken
    ``min_seeker_turns`` times yet)."""
    points: list[EvalPoint] = []
    left = {"repeat": 0, "no_context": 0}
    seen: set[str] = set()
    seeker_turns = 0
    events = 0
    for i, (t, ts) in enumerate(zip(dialogue.turns, turn_times(dialogue, start_ms), strict=True)):
        if t.role == RECOMMENDER:
            before = frozenset(seen)
            for movie in t.movies:
                if movie in before:
                    left["repeat"] += 1
                elif seeker_turns < min_seeker_turns:
                    left["no_context"] += 1
                else:
                    points.append(
                        EvalPoint(
                            dialogue.conversation_id, dialogue.user_id, i, movie, ts, events, before
                        )
                    )
        else:
            seeker_turns += 1
            events += max(len(t.movies), 1)
        seen.update(t.movies)
    return points, left


# ----------------------------------------------------------------------------- item text


def _readable(text: str, names: Mapping[str, str]) -> str:
    return MENTION.sub(lambda m: names.get(m.group(1), "a movie"), text)


def item_documents(
    train: Iterable[Dialogue],
    movies: Mapping[str, str],
    *,
    window: int = 1,
    max_chars: int = 2000,
) -> dict[str, str]:
    """Text to embed per movie: its name, then the turns around its mentions (``window`` turns
    either side) in the given dialogues only, ``@id`` written as names; at most ``max_chars``.

    Pass training dialogues only: dev dialogues' text would leak the targets' contexts."""
    parts: dict[str, list[str]] = {m: [" ".join(n.split())] for m, n in movies.items()}
    size = {m: len(p[0]) for m, p in parts.items()}
    for d in train:
        names = {**d.mentions, **movies}
        for i, t in enumerate(d.turns):
            if not t.movies:
                continue
            lo, hi = max(0, i - window), min(len(d.turns), i + window + 1)
            ctx = " ".join(_readable(x.text, names) for x in d.turns[lo:hi])
            for movie in t.movies:
                doc = parts.setdefault(movie, [" ".join(names.get(movie, movie).split())])
                room = max_chars - size.get(movie, len(doc[0]))
                if room > 1:
                    doc.append(ctx[: room - 1])
                    size[movie] = size.get(movie, len(doc[0])) + 1 + len(doc[-1])
    return {m: " ".join(p)[:max_chars] for m, p in parts.items()}
