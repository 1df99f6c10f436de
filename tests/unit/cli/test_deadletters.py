"""Which dead letters a redrive picks and the bytes it re-sends."""

from __future__ import annotations

import base64
from collections import Counter

from stream.cli.deadletters import Redrive, raw_value, select


def letter(kind: str, ts: int, raw: str = '{"user_id": "u"}', **extra: object) -> dict[str, object]:
    return {
        "source_topic": "moodstream.reviews.v1",
        "error_kind": kind,
        "raw": raw,
        "raw_encoding": "utf-8",
        "raw_truncated": False,
        "ts": ts,
        **extra,
    }


def test_select_by_kind_and_half_open_time_range() -> None:
    letters = [letter("unknown_item", 100), letter("schema", 150), letter("unknown_item", 200)]
    assert select(letters, (), None, None) == letters
    assert select(letters, ("unknown_item",), None, None) == [letters[0], letters[2]]
    assert select(letters, ("unknown_item",), 100, 200) == [letters[0]]
    assert select(letters, (), 150, None) == letters[1:]
    assert select([{"error_kind": "schema"}], (), 0, None) == []  # no time: not in any range


def test_raw_value_restores_the_original_bytes_and_refuses_cut_ones() -> None:
    assert raw_value(letter("schema", 1, raw='{"a": 1}')) == b'{"a": 1}'
    binary = b"\xff\xfe\x00garbage"
    encoded = letter("encoding", 1, raw=base64.b64encode(binary).decode(), raw_encoding="base64")
    assert raw_value(encoded) == binary
    assert raw_value(letter("oversize", 1, raw_truncated=True)) is None
    assert raw_value({"error_kind": "schema"}) is None


def test_the_report_says_what_was_sent_where() -> None:
    result = Redrive(
        sent=Counter(
            {
                ("moodstream.reviews.v1", "unknown_item"): 3,
                ("moodstream.clicks.v1", "unknown_item"): 1,
            }
        ),
        truncated=2,
        considered=9,
    )
    assert result.lines(dry_run=False) == [
        "re-sent 4 of 9 dead letter(s) read",
        "  moodstream.clicks.v1: 1 (unknown_item=1)",
        "  moodstream.reviews.v1: 3 (unknown_item=3)",
        "  skipped 2 whose raw value was cut (not re-sendable)",
    ]
    assert result.lines(dry_run=True)[0] == "would re-send 4 of 9 dead letter(s) read"
