"""Review and chat wording follows rating and mood; lengths are realistic."""

from __future__ import annotations

import statistics

from stream.sim.simulate import (
    SimEvent,
    Simulation,
)
from tests.unit.sim.lexicon import NEGATIVE, POSITIVE, share_with


def test_review_wording_follows_rating(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    _, evs = long_run
    low = [e.value["text"] for e in evs if e.kind == "reviews" and e.value.get("rating", 3) <= 2]
    high = [e.value["text"] for e in evs if e.kind == "reviews" and e.value.get("rating", 3) >= 4]
    assert share_with(low, NEGATIVE) > share_with(high, NEGATIVE) + 0.3
    assert share_with(high, POSITIVE) > share_with(low, POSITIVE) + 0.3


def test_review_lengths_are_realistic(events: list[SimEvent]) -> None:
    lengths = [len(e.value["text"].split()) for e in events if e.kind == "reviews"]
    inside = sum(30 <= n <= 120 for n in lengths) / len(lengths)
    assert inside > 0.75
    assert 40 <= statistics.median(lengths) <= 80
    assert max(lengths) > 150  # a long tail
    assert all(len(e.value["text"].encode()) <= 8192 for e in events if e.kind == "reviews")


def test_chat_wording_follows_mood(long_run: tuple[Simulation, list[SimEvent]]) -> None:
    _, evs = long_run
    chats = [e for e in evs if e.kind == "chats"]
    sad_spell = [e.value["text"] for e in chats if e.latent.spell == "sad"]
    joyful = [e.value["text"] for e in chats if e.latent.mood == "joyful"]
    neutral = [e.value["text"] for e in chats if e.latent.mood == "neutral"]
    assert min(len(sad_spell), len(joyful), len(neutral)) >= 30
    assert share_with(sad_spell, NEGATIVE) > 2 * share_with(neutral, NEGATIVE)
    assert share_with(sad_spell, NEGATIVE) > 2 * share_with(joyful, NEGATIVE)
    assert share_with(joyful, POSITIVE) > 2 * share_with(sad_spell, POSITIVE)


def test_chat_length_and_sessions(events: list[SimEvent]) -> None:
    chats = [e.value for e in events if e.kind == "chats"]
    assert all(8 <= len(c["text"].split()) <= 20 for c in chats)
    owners: dict[str, str] = {}
    for c in chats:
        assert owners.setdefault(c["session_id"], c["user_id"]) == c["user_id"]
    assert len(owners) < len(chats)  # sessions hold several messages
