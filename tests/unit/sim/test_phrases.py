"""The phrase banks load from package data into typed, immutable tables."""

from __future__ import annotations

from stream.sim import phrases


def test_banks_load_as_tuples_keyed_by_category_and_mood() -> None:
    assert phrases.CATEGORY_BANKS
    for bank in phrases.CATEGORY_BANKS.values():
        assert isinstance(bank.nouns, tuple) and bank.nouns
        assert all(isinstance(k, tuple) and len(k) == 3 for k in bank.kinds)
        assert len(bank.features) >= 4
    assert set(phrases.CHAT_TEMPLATES) == set(phrases.MOODS) == set(phrases.CHAT_TAILS)
    assert len(phrases.REVIEW_OPENERS) == len(phrases.REVIEW_CLOSERS) == 5
    assert all(isinstance(t, tuple) for t in phrases.CHAT_TEMPLATES.values())
