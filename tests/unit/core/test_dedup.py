from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stream.core.dedup import CAPACITY, DedupState, fold

DAY = 86400


def test_second_delivery_is_a_duplicate() -> None:
    state, new = fold(DedupState(), "e1", 1_000_000, window_s=DAY)
    assert new
    again, new2 = fold(state, "e1", 1_000_500, window_s=DAY)
    assert not new2
    assert again == state


def test_old_ids_expire_by_event_time_and_by_capacity() -> None:
    state, _ = fold(DedupState(), "old", 0, window_s=60)
    state, _ = fold(state, "later", 120_000, window_s=60)
    _, new = fold(state, "old", 121_000, window_s=60)
    assert new  # outside the window: counted again, by design
    state = DedupState()
    for i in range(CAPACITY + 10):
        state, _ = fold(state, f"e{i}", 1000 * i, window_s=DAY)
    assert len(state.entries) == CAPACITY
    assert fold(state, f"e{CAPACITY + 9}", 0, window_s=DAY)[1] is False


@given(st.lists(st.tuples(st.text(min_size=1, max_size=20), st.integers(0, 10**12)), max_size=80))
def test_round_trip_and_bounded_size(events: list[tuple[str, int]]) -> None:
    state = DedupState()
    for event_id, ts in sorted(events, key=lambda e: e[1]):
        state, _ = fold(state, event_id, ts, window_s=DAY)
    assert DedupState.from_dict(state.to_dict()) == state
    assert len(str(state.to_dict())) < 1200
