"""A compiled acceptance check for flat record schemas: the input contracts' common case
(every value valid) decided by a handful of ``isinstance`` and length tests.

jsonschema walks a value keyword by keyword through generic machinery: about 45 us per click,
more than the click's fold. Only acceptance is compiled here, and only for the keywords the input
schemas use; a value this check rejects goes to jsonschema, which finds and words the error, so
the compiled check can never change a dead letter's reason, only skip the work for good values.
A schema with any other keyword compiles to ``None`` (always jsonschema).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

_IGNORED = frozenset({"$schema", "$id", "title", "description", "examples", "default"})
_OBJECT_KEYS = frozenset({"type", "properties", "required", "additionalProperties"}) | _IGNORED
_SCALAR_KEYS = (
    frozenset({"type", "minLength", "maxLength", "pattern", "enum", "minimum", "maximum"})
    | _IGNORED
)


def _is_string(value: Any) -> bool:
    return type(value) is str


def _is_integer(value: Any) -> bool:
    """JSON Schema's integer: a JSON number with no fraction (``1.0`` included), never a bool."""
    kind = type(value)
    return kind is int or (kind is float and value.is_integer())


_TYPES: dict[str, Check] = {"string": _is_string, "integer": _is_integer}


def compile_flat(schema: Mapping[str, Any]) -> Check | None:
    """``value -> bool``, true exactly when jsonschema finds no error in ``value``; ``None`` for
    a schema beyond an object of strings and integers with length, pattern, enum and range
    keywords."""
    if set(schema) - _OBJECT_KEYS or schema.get("type") != "object":
        return None
    if schema.get("additionalProperties", True) is not False:
        return None
    properties = schema.get("properties", {})
    checks: dict[str, Check] = {}
    for name, sub in properties.items():
        check = _compile_scalar(sub)
        if check is None:
            return None
        checks[name] = check
    required = tuple(schema.get("required", ()))
    if any(name not in checks for name in required):
        return None

    def accepts(value: Any) -> bool:
        if type(value) is not dict:
            return False
        for name in required:
            if name not in value:
                return False
        for name, field in value.items():
            check = checks.get(name)
            if check is None or not check(field):
                return False
        return True

    return accepts


def _compile_scalar(schema: Mapping[str, Any]) -> Check | None:
    if not isinstance(schema, Mapping) or set(schema) - _SCALAR_KEYS:
        return None
    is_type = _TYPES.get(schema.get("type", ""))
    if is_type is None:
        return None
    parts: list[Check] = [is_type]
    if "minLength" in schema or "maxLength" in schema:
        if is_type is not _is_string:
            return None
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        parts.append(lambda v: low <= len(v) and (high is None or len(v) <= high))
    if "pattern" in schema:
        if is_type is not _is_string:
            return None
        search = re.compile(schema["pattern"]).search
        parts.append(lambda v: search(v) is not None)
    if "enum" in schema:
        if not all(type(e) is str for e in schema["enum"]) or is_type is not _is_string:
            return None
        allowed = frozenset(schema["enum"])
        parts.append(lambda v: v in allowed)
    if "minimum" in schema or "maximum" in schema:
        if is_type is not _is_integer:
            return None
        least, most = schema.get("minimum"), schema.get("maximum")
        parts.append(lambda v: (least is None or v >= least) and (most is None or v <= most))

    def check(value: Any) -> bool:
        return all(part(value) for part in parts)

    return check
