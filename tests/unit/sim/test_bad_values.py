"""Bad values: added between unchanged good ones, each dead-lettering with the kind it claims."""

from __future__ import annotations

from collections import Counter

import pytest

from stream.contract.decoding import decode
from stream.errors import DeadLetter
from stream.sim.simulate import (
    BAD_KINDS,
    SimConfig,
    Simulation,
)


def test_bad_values_are_added_between_unchanged_good_ones() -> None:
    clean = list(Simulation(SimConfig(seed=9, n_events=600)).messages())
    noisy = list(Simulation(SimConfig(seed=9, n_events=600, bad_rate=0.1)).messages())
    assert [m for m in noisy if m.bad is None] == clean
    assert 30 <= sum(m.bad is not None for m in noisy) <= 100


def test_bad_messages_dead_letter_with_the_kind_they_claim() -> None:
    messages = list(Simulation(SimConfig(seed=8, n_events=1500, bad_rate=0.2)).messages())
    seen = Counter()
    for message in messages:
        if message.bad is None:
            decode(message.kind, message.value, max_value_bytes=65536, max_text_bytes=8192)
            continue
        with pytest.raises(DeadLetter) as caught:
            decode(message.kind, message.value, max_value_bytes=65536, max_text_bytes=8192)
        assert caught.value.kind == message.bad, message
        assert b"\n" not in message.value  # one value per line in JSON-lines files
        seen[message.bad] += 1
    assert set(seen) == set(BAD_KINDS)
    assert sum(m.bad is None for m in messages) == 1500
