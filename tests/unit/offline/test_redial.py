"""ReDial loader: both file forms, chat events, honest test points, train-only item text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stream.contract.decoding import validate_value
from stream.errors import DatasetError
from stream.offline.redial import (
    DIALOGUE_GAP_MS,
    MERGED_FILE,
    MOVIES_FILE,
    RAW_FILE,
    chat_events,
    dialogue_starts,
    eval_points,
    item_documents,
    load_redial,
    mentioned,
    merge_turns,
    split_dialogues,
    turn_times,
)

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
REDIAL = DATA / "conversations" / "redial"

SEEKER, REC = 7, 8


def _msg(mid: int, sender: int, text: str, offset: int) -> dict[str, Any]:
    return {"messageId": mid, "senderWorkerId": sender, "text": text, "timeOffset": offset}


def _raw(cid: str, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "conversationId": cid,
        "initiatorWorkerId": SEEKER,
        "respondentWorkerId": REC,
        "messages": messages,
        "movieMentions": {"1": "Alien (1979)", "2": "Heat (1995)", "3": "Up (2009)"},
        "initiatorQuestions": extra.get("iq", {"2": {"suggested": 1, "seen": 0, "liked": 1}}),
        "respondentQuestions": extra.get("rq", []),
    }


# cid 20: the seeker loves @1, the recommender suggests @2 and @1 again, the seeker asks about
# @3, the recommender suggests @3 (already mentioned) and @2 (already mentioned) -> points: @2.
DIALOGUE_20 = [
    _msg(100, SEEKER, "hi, I loved @1 so much", 0),
    _msg(101, REC, "then try @2 , or rewatch @1", 30),
    _msg(102, SEEKER, "what about @3 ?", 45),
    _msg(103, REC, "yes @3 and @2 @2", 60),
]
# cid 3: the recommender speaks first (no context), then the seeker, then two of its turns.
DIALOGUE_3 = [
    _msg(1, REC, "hello! have you seen @3 ?", 0),
    _msg(2, SEEKER, "no, I hated @1 though", 10),
    _msg(3, REC, "ok, @2 then", 20),
    _msg(4, REC, "or @3 again", 25),
    _msg(5, 99, "a stray message from a third worker @1", 26),
]


def _merged(cid: str) -> dict[str, Any]:
    turns = [
        (SEEKER, "I like scary movies like @1 Or @2"),
        (REC, "Have you seen @3 ? It is great"),
        (SEEKER, "no I have not"),
        (REC, "try @3 or @2 then, and @1"),
    ]
    obj = _raw(cid, [])
    obj["messages"] = [
        {
            "senderWorkerId": s,
            "text": t,
            "turn_id": i,
            "entity": [],
            "item": ["x"],
            "thread": [],
            "masked_text": t,
            "word": [],
        }
        for i, (s, t) in enumerate(turns)
    ]
    return obj


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    lines = [_raw("20", DIALOGUE_20), "{not json", _raw("3", DIALOGUE_3)]
    (tmp_path / RAW_FILE).write_text(
        "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n\n"
    )
    (tmp_path / MERGED_FILE).write_text(
        json.dumps(_merged("11")) + "\n" + json.dumps(_merged("20")) + "\n"
    )
    (tmp_path / MOVIES_FILE).write_text(
        "movieId,movieName,nbMentions\n1,Alien  (1979),3\n4,Brazil (1985),1\n"
    )
    return tmp_path


def test_load_orders_by_conversation_id_and_keeps_questionnaires_apart(folder: Path) -> None:
    data = load_redial(folder)
    assert [d.conversation_id for d in data.dialogues] == ["3", "11", "20"]
    assert [d.form for d in data.dialogues] == ["raw", "merged", "raw"]
    assert data.skipped == {"bad_line": 1, "foreign_sender": 1, "duplicate_dialogue": 1}
    d20 = data.dialogues[2]
    assert [(t.role, t.movies) for t in d20.turns] == [
        ("seeker", ("1",)),
        ("recommender", ("2", "1")),
        ("seeker", ("3",)),
        ("recommender", ("3", "2")),  # repeats inside a turn counted once, first-mention order
    ]
    assert d20.turns[1].message_ids == (101,) and d20.turns[1].offset_s == 30
    assert data.questionnaires["20"].seeker["2"].liked == 1
    assert data.questionnaires["20"].recommender == {}
    # names: the csv first (spaces normalised), then every dialogue's movieMentions
    assert data.movies == {
        "1": "Alien (1979)",
        "4": "Brazil (1985)",
        "2": "Heat (1995)",
        "3": "Up (2009)",
    }
    assert mentioned("@12 and @3, @12") == ("12", "3")


def test_merged_form(folder: Path) -> None:
    d11 = load_redial(folder).dialogues[1]
    assert d11.form == "merged"
    assert [(t.role, t.movies, t.offset_s, t.message_ids) for t in d11.turns] == [
        ("seeker", ("1", "2"), 0, ()),
        ("recommender", ("3",), 1, ()),
        ("seeker", (), 2, ()),
        ("recommender", ("3", "2", "1"), 3, ()),
    ]
    points, left = eval_points(d11, 0)
    assert [(p.turn, p.target) for p in points] == [(1, "3")]
    assert left == {"repeat": 3, "no_context": 0}
    only_merged = load_redial(folder, forms=("merged",))
    assert [d.conversation_id for d in only_merged.dialogues] == ["11", "20"]
    assert only_merged.dialogues[1].form == "merged"


def test_merge_turns_of_the_raw_form(folder: Path) -> None:
    d3 = load_redial(folder).dialogues[0]
    merged = merge_turns(d3)
    assert [(t.role, t.movies, t.message_ids) for t in merged.turns] == [
        ("recommender", ("3",), (1,)),
        ("seeker", ("1",), (2,)),
        ("recommender", ("2", "3"), (3, 4)),
    ]
    assert merged.turns[2].text == "ok, @2 then or @3 again"


def test_chat_events_are_valid_seeker_messages_in_time_order(folder: Path) -> None:
    data = load_redial(folder)
    starts = dialogue_starts(data.dialogues, start_ms=1_000_000)
    assert starts == {
        "3": 1_000_000,
        "11": 1_000_000 + DIALOGUE_GAP_MS,
        "20": 1_000_000 + 2 * DIALOGUE_GAP_MS,
    }
    d20 = data.dialogues[2]
    events = chat_events(d20, starts["20"])
    start = starts["20"]
    assert [(e["event_id"], e.get("item_id"), e["ts"] - start) for e in events] == [
        ("redial-20-0-0", "1", 0),
        ("redial-20-2-0", "3", 45_002),  # 45 s, + position 2 ms: strictly increasing
    ]
    assert {e["user_id"] for e in events} == {"redial-seeker-20"}
    for e in events:
        validate_value("chats", e)
    d11 = data.dialogues[1]
    ev11 = chat_events(d11, starts["11"])
    assert [(e["event_id"], e.get("item_id")) for e in ev11] == [
        ("redial-11-0-0", "1"),
        ("redial-11-0-1", "2"),  # one event per mentioned movie, same text and time
        ("redial-11-2", None),  # a turn with no movie: one event without item context
    ]
    assert ev11[0]["ts"] == ev11[1]["ts"] < ev11[2]["ts"]
    every = [t for d in data.dialogues for t in turn_times(d, starts[d.conversation_id])]
    assert every == sorted(every) and len(set(every)) == len(every)


def test_eval_points_see_only_the_past_and_exclude_earlier_mentions(folder: Path) -> None:
    data = load_redial(folder)
    starts = dialogue_starts(data.dialogues)
    d20 = data.dialogues[2]
    points, left = eval_points(d20, starts["20"])
    times = turn_times(d20, starts["20"])
    # turn 1: @2 is new (point), @1 was the seeker's -> repeat; turn 3: @3, @2 both repeats
    assert [(p.turn, p.target, p.exclude) for p in points] == [(1, "2", frozenset({"1"}))]
    assert left == {"repeat": 3, "no_context": 0}
    p = points[0]
    assert p.before_ts == times[1]
    events = chat_events(d20, starts["20"])
    usable = [e for e in events if e["ts"] < p.before_ts]
    assert len(usable) == p.history == 1  # the later seeker message is not visible
    assert all(p.target not in e["text"] for e in usable)
    # a recommender turn before the seeker spoke has no context
    d3 = data.dialogues[0]
    p3, left3 = eval_points(d3, starts["3"])
    assert [(q.turn, q.target, sorted(q.exclude)) for q in p3] == [(2, "2", ["1", "3"])]
    assert left3 == {"repeat": 1, "no_context": 1}
    # the questionnaire says the seeker liked @2, but nothing of it reaches events or points
    blob = json.dumps([chat_events(d, 0) for d in data.dialogues]) + repr(points)
    assert "suggested" not in blob and "liked" not in blob


def test_split_is_by_conversation_id(folder: Path) -> None:
    ds = load_redial(folder).dialogues
    train, dev = split_dialogues(list(reversed(ds)), dev_share=0.34)
    assert [d.conversation_id for d in train] == ["3", "11"]
    assert [d.conversation_id for d in dev] == ["20"]
    assert split_dialogues(ds, 0.0)[1] == []
    with pytest.raises(ValueError):
        split_dialogues(ds, 1.0)


def test_item_documents_use_training_dialogues_only(folder: Path) -> None:
    data = load_redial(folder)
    train, _ = split_dialogues(data.dialogues, dev_share=0.34)
    docs = item_documents(train, data.movies)
    assert set(docs) == {"1", "2", "3", "4"}
    assert docs["4"] == "Brazil (1985)"  # never mentioned: its name alone
    assert docs["1"].startswith("Alien (1979) ")
    assert "Heat (1995)" in docs["1"] and "@" not in docs["1"]  # mentions written as names
    assert "rewatch" not in " ".join(docs.values())  # dialogue 20 is dev
    short = item_documents(train, data.movies, max_chars=20)
    assert all(len(v) <= 20 for v in short.values())


def test_missing_folder_and_bad_movies_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError):
        load_redial(tmp_path)
    (tmp_path / RAW_FILE).write_text(json.dumps(_raw("1", DIALOGUE_20)) + "\n")
    (tmp_path / MOVIES_FILE).write_text("id,name\n1,x\n")
    with pytest.raises(DatasetError):
        load_redial(tmp_path)


@pytest.mark.skipif(not REDIAL.exists(), reason=f"ReDial sample not found at {REDIAL}")
def test_real_sample_figures() -> None:
    data = load_redial(REDIAL)
    assert len(data.dialogues) == 4101
    assert sum(d.form == "merged" for d in data.dialogues) == 646
    assert data.skipped == {}
    train, dev = split_dialogues(data.dialogues)
    assert (len(train), len(dev)) == (3691, 410)
    starts = dialogue_starts(data.dialogues)
    n_dev = sum(len(eval_points(d, starts[d.conversation_id])[0]) for d in dev)
    assert n_dev == 1448
    mentioned_ids = {m for d in data.dialogues for t in d.turns for m in t.movies}
    assert mentioned_ids <= set(data.movies)


def test_reply_context_puts_a_bare_seeker_reply_on_the_movies_just_suggested() -> None:
    from stream.offline.redial import Dialogue, Turn

    d = Dialogue(
        "7",
        1,
        2,
        (
            Turn("seeker", "hi", (), 0),
            Turn("recommender", "try @5 or @6", ("5", "6"), 1),
            Turn("seeker", "loved that one", (), 2),
            Turn("seeker", "anything else?", (), 3),  # not a reply to a suggestion
            Turn("recommender", "hmm", (), 4),
            Turn("seeker", "ok", (), 5),
        ),
    )
    plain = [e.get("item_id") for e in chat_events(d, 0)]
    assert plain == [None, None, None, None]
    replied = [(e["event_id"], e.get("item_id")) for e in chat_events(d, 0, reply_context=True)]
    assert replied == [
        ("redial-7-0", None),
        ("redial-7-2-0", "5"),
        ("redial-7-2-1", "6"),
        ("redial-7-3", None),
        ("redial-7-5", None),
    ]
