"""Applied offsets as ranges: neighbours merge, a gap stays open, the record stays bounded."""

from __future__ import annotations

from stream.core import applied


def test_offsets_merge_into_ranges_and_a_gap_stays_open() -> None:
    ranges: applied.Ranges = []
    for offset in (0, 1, 2, 6, 7):
        ranges = applied.add(ranges, offset)
    assert ranges == [[0, 2], [6, 7]]
    assert not applied.contains(ranges, 4)
    ranges = applied.add(ranges, 3)
    ranges = applied.add(ranges, 5)
    ranges = applied.add(ranges, 4)
    assert ranges == [[0, 7]]
    assert applied.add(ranges, 7) == ranges


def test_past_the_bound_the_lowest_ranges_merge() -> None:
    ranges: applied.Ranges = []
    for offset in range(0, 40, 2):  # 20 single offsets, none adjacent
        ranges = applied.add(ranges, offset, most=4)
    assert len(ranges) == 4
    assert ranges[-1] == [38, 38]
    assert applied.contains(ranges, 1)  # merged below: counted as applied


def test_an_older_records_high_water_mark_reads_as_one_range() -> None:
    assert applied.from_record({"hw": {"reviews:0": 4}}) == {"reviews:0": [[0, 4]]}
    assert applied.from_record({"applied": {"reviews:0": [[2, 4]]}}) == {"reviews:0": [[2, 4]]}
    assert applied.from_record({}) == {}
