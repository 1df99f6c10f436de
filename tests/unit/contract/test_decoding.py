"""Decoding is total: any byte string on any input topic is a valid record or a dead letter."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contract.decoding import check_key, decode
from stream.contract.records import Click, Review
from stream.contract.topics import INPUT_KINDS
from stream.core import dedup
from stream.errors import DeadLetter

LIMITS = {"max_value_bytes": 65536, "max_text_bytes": 8192}
REVIEW = {"event_id": "r1", "user_id": "u1", "item_id": "i1", "text": "fine", "ts": 1}


def _review(**changes: object) -> bytes:
    return json.dumps({**REVIEW, **changes}).encode()


def _dead(kind: str, raw: bytes) -> DeadLetter:
    with pytest.raises(DeadLetter) as caught:
        decode(kind, raw, **LIMITS)
    return caught.value


CORPUS: dict[str, tuple[str, bytes]] = {
    "deep array": ("reviews", b"[" * 10_000 + b"]" * 10_000),
    "deep object": ("chats", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    "deep array in a field": ("reviews", _review()[:-1] + b', "x": ' + b"[" * 10_000 + b"]}"),
    "5000-digit integer": ("clicks", b'{"ts": ' + b"9" * 5_000 + b"}"),
    "5000-digit ts in a valid click": (
        "clicks",
        b'{"event_id":"k","user_id":"u","item_id":"i","action":"view","ts":' + b"1" * 5_000 + b"}",
    ),
    "lone surrogate in text": ("reviews", _review().replace(b'"fine"', b'"\\ud800 x"')),
    "lone surrogate in user_id": ("reviews", _review().replace(b'"u1"', b'"u\\udfff"')),
    "fractional ts": ("reviews", _review(ts=1.5)),
    "NaN ts": ("reviews", _review().replace(b'"ts": 1', b'"ts": NaN')),
    "not an object": ("erasure", b"[1, 2, 3]"),
    "invalid UTF-8": ("chats", b'{"text": "\xff\xfe"}'),
    "empty": ("clicks", b""),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_corpus_value_is_a_dead_letter_with_a_reason(name: str) -> None:
    kind, raw = CORPUS[name]
    error = _dead(kind, raw)
    assert error.kind in {"malformed_json", "schema", "encoding", "oversize"}
    assert error.message


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(INPUT_KINDS), st.binary(max_size=512))
def test_random_bytes_never_escape_as_another_error(kind: str, raw: bytes) -> None:
    try:
        decode(kind, raw, **LIMITS)
    except DeadLetter as exc:
        assert exc.kind
    # anything else propagates and fails the test


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(INPUT_KINDS),
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    ),
)
def test_random_json_never_escapes_as_another_error(kind: str, value: object) -> None:
    with contextlib.suppress(DeadLetter):
        decode(kind, json.dumps(value).encode(), **LIMITS)


def test_an_integral_float_ts_becomes_an_int_the_state_can_pack() -> None:
    record = decode("reviews", _review(ts=1764100000000.0), **LIMITS)
    assert isinstance(record, Review)
    assert record.ts == 1764100000000 and type(record.ts) is int
    window, new = dedup.fold(dedup.DedupState(), "r1", record.ts, window_s=86400)
    assert new
    assert dedup.DedupState.from_dict(window.to_dict()) == window


def test_a_far_future_ts_then_ts_zero_still_packs() -> None:
    window, _ = dedup.fold(dedup.DedupState(), "a", 32503680000000, window_s=86400)
    window, new = dedup.fold(window, "b", 0, window_s=86400)
    assert new
    assert dedup.DedupState.from_dict(window.to_dict()) == window


def test_null_and_foreign_keys_are_dead_letters() -> None:
    click = Click(event_id="k", user_id="u1", item_id="i", action="view", ts=1)
    check_key(click, b"u1")
    with pytest.raises(DeadLetter, match="no key"):
        check_key(click, None)
    with pytest.raises(DeadLetter, match="does not match"):
        check_key(click, b"u2")
