"""The per-batch work of the agents and the replay, on the real adapters with tiny artifacts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from stream.adapters.index import FaissItemIndex, build_index
from stream.adapters.sentiment import OnnxSentimentModel
from stream.contract.decoding import validate_value
from stream.contract.records import Chat, Click, Erasure, Review
from stream.settings import Settings
from stream.worker.processor import Decoded, Processor, load_user
from tests.fixtures.tiny_model import build_tiny_model

ITEMS = [f"item-{i}" for i in range(40)]


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Processor:
    root = tmp_path_factory.mktemp("proc")
    model_dir = build_tiny_model(root / "model")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 384))
    vectors = np.stack([centres[i % 4] + 0.3 * rng.normal(size=384) for i in range(len(ITEMS))])
    build_index(ITEMS, vectors.astype(np.float32), root / "index", "sha")
    settings = Settings(model_dir=str(model_dir), index_dir=str(root / "index"))
    model = OnnxSentimentModel.from_settings(settings)
    return Processor(settings, model, FaissItemIndex.load(root / "index"))


def review(
    eid: str, user: str, item: str, text: str, ts: int, rating: int | None = None
) -> Decoded:
    return Decoded(
        "reviews", Review(event_id=eid, user_id=user, item_id=item, text=text, ts=ts, rating=rating)
    )


def click(eid: str, user: str, item: str, action: str, ts: int) -> Decoded:
    return Decoded("clicks", Click(event_id=eid, user_id=user, item_id=item, action=action, ts=ts))


def chat(eid: str, user: str, text: str, ts: int) -> Decoded:
    return Decoded("chats", Chat(event_id=eid, user_id=user, text=text, session_id="s", ts=ts))


def fold(
    p: Processor,
    batch: list[Decoded],
    users: dict[str, Any],
    items: dict[str, Any] | None = None,
) -> Any:
    out = p.fold_batch(batch, p.score(batch), users, now_ms=0)
    for _, value in out.item_events:
        p.fold_item(value, items if items is not None else {})
    return out


def test_batch_folds_in_order_with_one_score_row_per_text(processor: Processor) -> None:
    users: dict[str, Any] = {}
    items: dict[str, Any] = {}
    batch = [
        review("r1", "pos", "item-1", "great wonderful love it", 1000, 5),
        click("k1", "pos", "item-2", "view", 1001),
        review("r2", "neg", "item-3", "terrible awful hate it", 1002, 1),
        chat("c1", "neg", "angry furious worst day", 1003),
    ]
    out = fold(processor, batch, users, items)
    assert out.counts == {"reviews": 2, "clicks": 1, "chats": 1}
    assert out.triggers == {"pos": ("k1", 1001), "neg": ("c1", 1003)}
    assert [k for k, _ in out.item_events] == ["item-1", "item-2", "item-3"]
    pos = processor.recommend("pos", "k1", 1001, users, 2000)
    neg = processor.recommend("neg", "c1", 1003, users, 2000, out.states["neg"])
    assert pos is not None and neg is not None
    assert pos["emotion"]["valence"] > 0 > neg["emotion"]["valence"]
    assert neg["emotion"]["dominant"] == "anger"
    for rec in (pos, neg):
        validate_value("recommendations", rec)
    assert "item-1" not in {i["item_id"] for i in pos["items"]}  # reviewed: never again
    assert "item-3" not in {i["item_id"] for i in neg["items"]}


def test_duplicates_unknown_items_and_erasure(processor: Processor) -> None:
    users: dict[str, Any] = {}
    first = fold(processor, [click("k1", "u", "item-5", "purchase", 10)], users)
    state_after_first = dict(users)
    again = fold(
        processor,
        [click("k1", "u", "item-5", "purchase", 10), click("k2", "u", "nope", "view", 11)],
        users,
    )
    assert first.counts == {"clicks": 1}
    assert again.duplicates == 1 and again.counts == {}
    assert [(d.record.event_id, e.kind) for d, e in again.rejected] == [("k2", "unknown_item")]
    assert users == state_after_first  # neither the duplicate nor the bad event changed state
    gone = fold(processor, [Decoded("erasure", Erasure(user_id="u", ts=12))], users)
    assert gone.erased == ["u"] and "u" not in users
    assert processor.recommend("u", "k1", 10, users, 20) is None


def test_same_events_fold_to_the_same_state(processor: Processor) -> None:
    events = [
        review(
            f"r{i}",
            f"u{i % 3}",
            f"item-{i}",
            "good sound" if i % 2 else "bad sound",
            100 + i,
            1 + i % 5,
        )
        for i in range(12)
    ]
    states = []
    for _ in range(2):
        users: dict[str, Any] = {}
        fold(processor, events, users)
        states.append(users)
    assert states[0] == states[1]


def test_state_beyond_the_taste_vector_stays_under_2_kb(processor: Processor) -> None:
    """Everything the worker keeps per user (one record: state and dedup window), saturated."""
    import json

    users: dict[str, Any] = {}
    for start in range(0, 300, 30):
        batch = [
            review(f"r{i}", "heavy", ITEMS[i % len(ITEMS)], "great sound", 1000 * i, 5)
            if i % 3 == 0
            else click(f"k{i}", "heavy", ITEMS[i % len(ITEMS)], "purchase", 1000 * i)
            for i in range(start, start + 30)
        ]
        fold(processor, batch, users)
    user = json.loads(json.dumps(users["heavy"]))
    user["taste"]["vec"] = None
    assert len(json.dumps(user)) <= 2048


class CountingTable(dict):  # type: ignore[type-arg]
    """A table that counts its writes (each one a changelog message in the worker)."""

    writes = 0

    def __setitem__(self, key: Any, value: Any) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def test_a_user_is_written_once_per_batch_and_items_get_one_value_each(
    processor: Processor,
) -> None:
    users = CountingTable()
    batch = [
        click("m1", "many", "item-7", "view", 100),
        click("m2", "many", "item-8", "purchase", 101),
        click("o1", "other", "item-7", "add_to_cart", 102),
        review("m3", "many", "item-7", "great tone", 103, 5),
    ]
    out = processor.fold_batch(batch, processor.score(batch), users, now_ms=0)
    assert users.writes == 2 and set(users) == {"many", "other"}
    assert out.triggers == {"many": ("m3", 103), "other": ("o1", 102)}
    grouped = dict(out.item_events)
    assert list(grouped) == ["item-7", "item-8"]
    assert [(e["ts"], e["kind"]) for e in grouped["item-7"]["events"]] == [
        (100, "clicks"),
        (102, "clicks"),
        (103, "reviews"),
    ]
    assert all("user_id" not in e for e in grouped["item-7"]["events"])  # erasure leaves none
    # The state handed to the ranker is the one written, including all three of its events.
    stored, window = load_user(users["many"])
    assert out.states["many"] == stored and len(window.entries) == 3
    assert "item-8" in stored.seen and "item-7" in stored.seen  # purchased, reviewed
    # Folding the same events one batch each gives the same records.
    one_by_one: dict[str, Any] = {}
    for d in batch:
        processor.fold_batch([d], processor.score([d]), one_by_one, now_ms=0)
    assert one_by_one == dict(users)


def test_the_item_board_is_rebuilt_from_the_items_table(processor: Processor) -> None:
    """A successor's board starts cold; reloading it from the table restores the ranking."""
    processor = Processor(processor.settings, processor.model, processor.index)  # own board
    users: dict[str, Any] = {}
    items: dict[str, Any] = {}
    batch = [
        review(f"r{i}", f"fan{i}", "item-9", "wonderful, I love it", 1000 + i, 5) for i in range(6)
    ] + [click("k1", "u", "item-1", "purchase", 2000)]
    fold(processor, batch, users, items)
    before = processor.recommend("u", "k1", 2000, users, 3000)

    successor = Processor(processor.settings, processor.model, processor.index)
    assert successor.board.get("item-9") is None  # a cold board
    assert successor.reload_items(items) == 2
    got = successor.board.get("item-9")
    assert got is not None and got[0].count == 6
    assert successor.popular(3000)[:2] == processor.popular(3000)[:2]
    assert successor.recommend("u", "k1", 2000, users, 3000) == before
    # Unknown or dropped ids in the table do not break a reload.
    items["gone-item"] = items["item-9"]
    assert successor.reload_items(items) == 2


def test_chunks_hold_at_most_batch_size_texts_in_order(processor: Processor) -> None:
    size = processor.settings.batch_size
    batch = [
        chat(f"c{i}", "u", "hi", i) if i % 3 else click(f"k{i}", "u", "item-1", "view", i)
        for i in range(4 * size)
    ]
    pieces = processor.chunks(batch)
    assert [d for piece in pieces for d in piece] == batch  # nothing lost, order kept
    texts = [sum(d.kind == "chats" for d in piece) for piece in pieces]
    assert all(0 < n <= size for n in texts) and sum(texts) == sum(d.kind == "chats" for d in batch)
    assert len(pieces) == -(-sum(texts) // size)  # as few pieces as the cap allows
    assert max(texts) - min(texts) <= 1  # of even size
    odd = [chat(f"c{i}", "u", "hi", i) for i in range(size + 3)]
    assert [len(p) for p in processor.chunks(odd)] == [(size + 4) // 2, (size + 2) // 2]
    clicks_only = [click(f"k{i}", "u", "item-1", "view", i) for i in range(3 * size)]
    assert processor.chunks(clicks_only) == [clicks_only] and processor.chunks([]) == []


def test_events_older_than_an_erasure_stay_dropped_whatever_their_topic(
    processor: Processor,
) -> None:
    """Topics have no mutual order: a chat written before the erasure may be read after it."""
    users: dict[str, Any] = {}
    erasures: dict[str, Any] = {}

    def run(batch: list[Decoded]) -> Any:
        return processor.fold_batch(batch, processor.score(batch), users, 0, erasures=erasures)

    run([chat("c1", "u", "hello there", 100)])
    gone = run([Decoded("erasure", Erasure(user_id="u", ts=500))])
    assert gone.erased == ["u"] and "u" not in users and erasures == {"u": 500}
    late = run(
        [
            chat("c0", "u", "an earlier chat, read late", 400),
            click("k0", "u", "item-1", "purchase", 500),
        ]
    )
    assert late.before_erasure == 2 and late.triggers == {} and "u" not in users
    unknown = run([review("r9", "u", "no-such-item", "old text of an erased user", 450)])
    assert unknown.before_erasure == 1 and unknown.rejected == []  # no dead letter keeps it
    back = run([chat("c2", "u", "I am back", 600)])
    assert back.counts == {"chats": 1} and users["u"]["erased_at"] == 500
    stale = run([review("r0", "u", "item-2", "old review", 450, 5), chat("c3", "u", "new", 700)])
    assert stale.before_erasure == 1 and stale.counts == {"chats": 1}
    assert "item-2" not in load_user(users["u"])[0].seen


class _Msg:
    def __init__(self, partition: int, offset: int) -> None:
        self.partition, self.offset = partition, offset


class _Event:
    def __init__(self, partition: int, offset: int) -> None:
        self.message = _Msg(partition, offset)


def sourced(d: Decoded, partition: int, offset: int) -> Decoded:
    return Decoded(d.kind, d.record, _Event(partition, offset))


def test_item_deltas_name_their_source_and_are_applied_once(processor: Processor) -> None:
    """A redelivered delta (same source partition and offset) is dropped by the item side, also
    when it arrives merged with new ones, and the applied offsets travel in the record."""
    processor = Processor(processor.settings, processor.model, processor.index)
    batch = [
        sourced(review(f"r{i}", f"fan{i}", "item-5", "wonderful, I love it", 1000 + i, 5), 0, i)
        for i in range(4)
    ] + [sourced(click("k1", "u", "item-5", "purchase", 2000), 1, 7)]
    out = processor.fold_batch(batch, processor.score(batch), {}, now_ms=0)
    ((item_id, value),) = out.item_events
    assert [(e["src"], e["off"]) for e in value["events"]] == [
        ("reviews:0", 0),
        ("reviews:0", 1),
        ("reviews:0", 2),
        ("reviews:0", 3),
        ("clicks:1", 7),
    ]
    once: dict[str, Any] = {}
    assert processor.fold_item(value, once) == 0
    assert once[item_id]["applied"] == {"reviews:0": [[0, 3]], "clicks:1": [[7, 7]]}
    twice = dict(once)
    assert processor.fold_item(value, twice) == 5  # all of it again: nothing applied
    assert twice == once
    # A redelivery merged with deltas the item side has not seen: only the new ones count.
    more = sourced(review("r9", "fan9", "item-5", "wonderful", 3000, 5), 0, 9)
    extra = processor.fold_batch([more], processor.score([more]), {}, now_ms=0).item_events[0][1]
    merged = {**value, "events": value["events"] + extra["events"]}
    assert processor.fold_item(merged, twice) == 5
    clean: dict[str, Any] = {}
    processor.fold_item(value, clean)
    processor.fold_item(extra, clean)
    assert twice == clean
    assert processor.item_state(item_id, clean).affect.count == 5


def test_held_user_writes_reach_the_table_only_when_applied() -> None:
    from stream.worker.pipeline import HeldUsers

    table: dict[str, Any] = {"gone": {"x": 1}, "kept": {"x": 2}}
    held = HeldUsers(table)
    held["new"] = {"x": 3}
    del held["gone"]
    assert held.get("new") == {"x": 3} and "gone" not in held and held["kept"] == {"x": 2}
    assert held.get("gone") is None and "new" not in table and "gone" in table
    assert held.apply() == 2
    assert table == {"kept": {"x": 2}, "new": {"x": 3}}
    assert held.apply() == 0


def test_a_refetched_gap_is_applied_after_later_offsets(processor: Processor) -> None:
    """Offsets the consumer fetches again after a rebalance race arrive after later ones: they
    are new, not redeliveries; an older record's high-water mark still counts as applied."""
    processor = Processor(processor.settings, processor.model, processor.index)

    def delta(offset: int) -> dict[str, Any]:
        d = sourced(click(f"k{offset}", "u", "item-5", "purchase", 2000 + offset), 1, offset)
        return processor.fold_batch([d], processor.score([d]), {}, now_ms=0).item_events[0][1]

    items: dict[str, Any] = {}
    for offset in (0, 1, 2, 6, 7):
        assert processor.fold_item(delta(offset), items) == 0
    assert items["item-5"]["applied"] == {"clicks:1": [[0, 2], [6, 7]]}
    assert processor.fold_item(delta(4), items) == 0  # the gap: applied
    assert processor.fold_item(delta(4), items) == 1  # and only once
    assert processor.item_state("item-5", items).popularity.count == 6
    old = {k: v for k, v in items["item-5"].items() if k != "applied"}
    legacy = {"item-5": {**old, "hw": {"clicks:1": 7}}}
    assert processor.fold_item(delta(5), legacy) == 1


def test_review_valence_is_calibrated_before_the_folds(processor: Processor) -> None:
    """The shift reaches the item delta (and so item affect) as the user side folded it; chats
    keep the model's valence."""

    def with_shift(shift: float) -> Processor:
        evidence = replace(processor.user_params.evidence, review_valence_shift=shift)
        params = replace(processor.user_params, evidence=evidence)
        return Processor(processor.settings, processor.model, processor.index, user_params=params)

    batch = [
        review("r1", "u", "item-1", "terrible awful hate it", 1000),
        Decoded(
            "chats",
            Chat(
                event_id="c1", user_id="u", text="awful", session_id="s", ts=1001, item_id="item-2"
            ),
        ),
    ]
    plain = dict(fold(with_shift(0.0), batch, {}).item_events)
    moved = dict(fold(with_shift(0.3), batch, {}).item_events)
    got = moved["item-1"]["events"][0]["valence"]
    want = min(max(plain["item-1"]["events"][0]["valence"] + 0.3, -1.0), 1.0)
    assert got == pytest.approx(want) and got != plain["item-1"]["events"][0]["valence"]
    assert moved["item-2"]["events"][0]["valence"] == plain["item-2"]["events"][0]["valence"]
    empty = [review("r2", "v", "item-3", "   ", 1002)]
    assert dict(fold(with_shift(0.3), empty, {}).item_events)["item-3"]["events"][0]["valence"] == 0
