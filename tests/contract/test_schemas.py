"""Every schema example validates and round-trips through its record; wrong values are rejected."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from stream.contract.decoding import SCHEMA_DIR, dead_letter, decode, load_schema, validate_value
from stream.contract.records import CONTRACTS
from stream.errors import DeadLetter
from stream.settings import Settings

LIMITS = {"max_value_bytes": 65536, "max_text_bytes": 8192}
EXAMPLES = [(kind, ex) for kind in CONTRACTS for ex in load_schema(kind)["examples"]]


def test_every_schema_file_has_a_record_and_is_draft_2020_12() -> None:
    names = {f.name for f in SCHEMA_DIR.glob("*.v1.json")}
    assert names == {filename for filename, _ in CONTRACTS.values()}
    for kind in CONTRACTS:
        schema = load_schema(kind)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)
        assert schema["examples"], kind


@pytest.mark.parametrize(("kind", "example"), EXAMPLES)
def test_example_round_trips_through_its_record(kind: str, example: dict) -> None:
    record = decode(kind, json.dumps(example).encode(), **LIMITS)
    assert isinstance(record, CONTRACTS[kind][1])
    back = record.to_json_dict()
    assert back == example
    validate_value(kind, back)


def test_topic_names_follow_the_design() -> None:
    s = Settings()
    assert [s.topic(k) for k in ("reviews", "chats", "clicks")] == [
        "moodstream.reviews.v1",
        "moodstream.chats.v1",
        "moodstream.clicks.v1",
    ]
    assert Settings(topic_prefix="t1.").topic("erasure") == "t1.moodstream.erasure.v1"


def _review(**changes: object) -> bytes:
    value = dict(load_schema("reviews")["examples"][0])
    value.update(changes)
    return json.dumps({k: v for k, v in value.items() if v is not ...}).encode()


WRONG = [
    ("reviews", b"{not json", "malformed_json"),
    ("reviews", b"", "malformed_json"),
    ("reviews", b"\xff\xfe{}", "encoding"),
    ("reviews", b"[1, 2]", "schema"),
    ("reviews", _review(rating=6), "schema"),
    ("reviews", _review(rating=3.5), "schema"),
    ("reviews", _review(ts="yesterday"), "schema"),
    ("reviews", _review(ts=-1), "schema"),
    ("reviews", _review(user_id=""), "schema"),
    ("reviews", _review(user_id="u" * 129), "schema"),
    ("reviews", _review(text=...), "schema"),
    ("reviews", _review(extra_field=1), "schema"),
    ("reviews", _review(text="x" * 8193), "oversize"),
    ("reviews", _review(text="é" * 5000), "oversize"),  # 5000 chars but 10000 UTF-8 bytes
    (
        "chats",
        json.dumps({"event_id": "c", "user_id": "u", "text": "hi", "ts": 1}).encode(),
        "schema",
    ),
    (
        "clicks",
        json.dumps(
            {"event_id": "k", "user_id": "u", "item_id": "i", "action": "like", "ts": 1}
        ).encode(),
        "unknown_action",
    ),
    (
        "clicks",
        json.dumps(
            {
                "event_id": "k",
                "user_id": "u",
                "item_id": "i",
                "action": "view",
                "dwell_ms": -5,
                "ts": 1,
            }
        ).encode(),
        "schema",
    ),
    ("erasure", json.dumps({"ts": 1}).encode(), "schema"),
]


@pytest.mark.parametrize(("kind", "raw", "expected"), WRONG)
def test_wrong_values_are_rejected_with_their_kind(kind: str, raw: bytes, expected: str) -> None:
    with pytest.raises(DeadLetter) as info:
        decode(kind, raw, **LIMITS)
    assert info.value.kind == expected
    assert info.value.message


def test_oversize_value_is_rejected_before_parsing() -> None:
    with pytest.raises(DeadLetter) as info:
        decode("clicks", b"x" * 70000, **LIMITS)
    assert info.value.kind == "oversize"


@pytest.mark.parametrize(
    ("raw", "encoding", "truncated"),
    [
        (b'{"a": 1}', "utf-8", False),
        (b"\xff\x00\x01", "base64", False),
        ("é".encode() * 3000, "utf-8", True),
        (b"\xfe" * 10000, "base64", True),
    ],
)
def test_dead_letter_record_is_bounded_and_valid(
    raw: bytes, encoding: str, truncated: bool
) -> None:
    record = dead_letter(
        DeadLetter("schema", "bad"), topic="t", partition=1, offset=5, key=b"u1", raw=raw, now_ms=1
    )
    value = record.to_json_dict()
    validate_value("deadletter", value)
    assert value["raw_encoding"] == encoding
    assert value["raw_truncated"] is truncated
    assert value["raw_bytes"] == len(raw)
    assert len(value["raw"]) <= 8192
