"""Which input offsets of one source partition an item record has applied: a few ranges.

A single high-water mark is not enough: after a rebalance the worker's consumer fetches again
offsets it had skipped (``stream.worker.consumer``), so their deltas arrive after deltas of
later offsets. Ranges keep both: later offsets once applied stay recognised, the refetched gap
is still open. Gaps close within seconds; past ``MOST`` ranges the two lowest are merged (the
offsets between them count as applied), which bounds the record.
"""

from __future__ import annotations

MOST = 8

Ranges = list[list[int]]  # sorted, disjoint, inclusive [low, high]


def contains(ranges: Ranges, offset: int) -> bool:
    return any(low <= offset <= high for low, high in ranges)


def add(ranges: Ranges, offset: int, most: int = MOST) -> Ranges:
    """The ranges with ``offset`` applied (a new list; neighbours merged)."""
    if contains(ranges, offset):
        return [list(r) for r in ranges]
    out = sorted([list(r) for r in ranges] + [[offset, offset]])
    merged: Ranges = []
    for low, high in out:
        if merged and low <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    while len(merged) > most:
        merged[0:2] = [[merged[0][0], merged[1][1]]]
    return merged


def from_record(raw: dict[str, object]) -> dict[str, Ranges]:
    """The applied ranges of an item record; an older record's ``hw`` (highest offset applied,
    everything below it too) reads as one range."""
    ranges = raw.get("applied")
    if isinstance(ranges, dict):
        return {str(k): [[int(a), int(b)] for a, b in v] for k, v in ranges.items()}
    marks = raw.get("hw")
    if isinstance(marks, dict):
        return {str(k): [[0, int(v)]] for k, v in marks.items()}
    return {}
