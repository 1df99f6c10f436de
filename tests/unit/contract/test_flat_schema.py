"""The compiled acceptance check says yes exactly when jsonschema finds no error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.contract.decoding import load_schema, validator
from stream.contract.flat_schema import compile_flat
from stream.contract.topics import INPUT_KINDS

_VALID: dict[str, dict[str, Any]] = {
    "reviews": {"event_id": "r1", "user_id": "u1", "item_id": "i1", "text": "ok", "ts": 1},
    "chats": {"event_id": "c1", "user_id": "u1", "text": "hi", "session_id": "s1", "ts": 1},
    "clicks": {"event_id": "k1", "user_id": "u1", "item_id": "i1", "action": "view", "ts": 1},
    "erasure": {"event_id": "e1", "user_id": "u1", "ts": 1},
}

# Values at and across the input schemas' edges: bounds, the control-character pattern (a
# trailing newline passes it), enum members and near misses, numbers JSON parses to.
_EDGES = st.sampled_from(
    [
        "", "a", "a" * 128, "a" * 129, "x" * 8192, "x" * 8193, "ab\n", "a\x00b", "\x1f", "é",
        "view", "skip", "View", "purchase ", 0, 1, -1, 5, 6, 86_400_000, 86_400_001,
        32_503_680_000_000, 32_503_680_000_001, 1.0, 1.5, -0.0, 1e300, float("nan"),
        float("inf"), True, False, None, [], {}, [1], {"a": 1},
    ]
)  # fmt: skip


def _values(kind: str) -> st.SearchStrategy[Any]:
    names = [*load_schema(kind)["properties"], "extra"]
    base = st.just(_VALID[kind])
    changes = st.dictionaries(st.sampled_from(names), _EDGES | st.text(max_size=4), max_size=3)
    dropped = st.sets(st.sampled_from(names), max_size=2)
    edited = st.builds(
        lambda b, c, d: {k: v for k, v in {**b, **c}.items() if k not in d}, base, changes, dropped
    )
    return edited | _EDGES


@pytest.mark.parametrize("kind", INPUT_KINDS)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_same_verdict_as_jsonschema(kind: str, data: st.DataObject) -> None:
    accepts = compile_flat(load_schema(kind))
    assert accepts is not None, f"{kind} should compile"
    value = data.draw(_values(kind))
    assert accepts(value) == validator(kind).is_valid(value)


def test_valid_examples_pass() -> None:
    for kind in INPUT_KINDS:
        accepts = compile_flat(load_schema(kind))
        assert accepts is not None
        assert validator(kind).is_valid(_VALID[kind]) and accepts(_VALID[kind])
        for example in load_schema(kind).get("examples", []):
            assert accepts(example)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"type": "string", "format": "date"}},
         "additionalProperties": False},
        {"type": "object", "properties": {"a": {"type": "number"}}, "additionalProperties": False},
        {"type": "object", "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {}, "required": ["a"], "additionalProperties": False},
        {"type": "array"},
    ],
)  # fmt: skip
def test_other_schemas_do_not_compile(schema: dict[str, Any]) -> None:
    assert compile_flat(schema) is None
