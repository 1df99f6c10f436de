"""Decoding at the edge: raw bytes -> validated record, or a ``DeadLetter`` saying why not."""

from __future__ import annotations

import base64
import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from stream.contract.flat_schema import Check, compile_flat
from stream.contract.records import CONTRACTS, DeadLetterRecord, _Record
from stream.errors import DeadLetter
from stream.settings import REPO_ROOT

SCHEMA_DIR = REPO_ROOT / "schemas"
RAW_LIMIT = 4096  # bytes of the original value kept in a dead letter
MESSAGE_LIMIT = 1024


@cache
def load_schema(kind: str) -> dict[str, Any]:
    filename, _ = CONTRACTS[kind]
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / filename).read_text("utf-8"))
    return schema


@cache
def validator(kind: str) -> Draft202012Validator:
    schema = load_schema(kind)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _classify(kind: str, error: ValidationError) -> DeadLetter:
    path = ".".join(str(p) for p in error.absolute_path) or "(value)"
    message = f"{path}: {error.message}"
    if kind == "clicks" and list(error.absolute_path) == ["action"] and error.validator == "enum":
        return DeadLetter("unknown_action", message)
    if list(error.absolute_path) == ["text"] and error.validator == "maxLength":
        return DeadLetter("oversize", message)
    return DeadLetter("schema", message)


@cache
def _accepts(kind: str) -> Check | None:
    return compile_flat(load_schema(kind))


def validate_value(kind: str, value: Any) -> None:
    """Raise ``DeadLetter`` for the first (most relevant) schema violation."""
    accepts = _accepts(kind)
    if accepts is not None and accepts(value):
        return
    errors = sorted(validator(kind).iter_errors(value), key=lambda e: e.path)
    if errors:
        raise _classify(kind, errors[0])


def decode(kind: str, raw: bytes | None, *, max_value_bytes: int, max_text_bytes: int) -> _Record:
    """Parse, validate and type one consumed value; every failure is a ``DeadLetter``.

    Total: whatever the bytes, the caller gets a record or a dead letter, never another error
    (a worker that died on one value would crash-loop on its redelivery).
    """
    try:
        return _decode(kind, raw, max_value_bytes=max_value_bytes, max_text_bytes=max_text_bytes)
    except DeadLetter:
        raise
    except Exception as exc:  # a value the checks above did not foresee: still a dead letter
        raise DeadLetter("schema", f"cannot decode the value ({type(exc).__name__})") from None


def _decode(kind: str, raw: bytes | None, *, max_value_bytes: int, max_text_bytes: int) -> _Record:
    if raw is None or raw == b"":
        raise DeadLetter("malformed_json", "empty value")
    if len(raw) > max_value_bytes:
        raise DeadLetter("oversize", f"value is {len(raw)} bytes, limit {max_value_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeadLetter(
            "encoding", f"value is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at {exc.start})"
        ) from None
    value = _parse(text)
    validate_value(kind, value)
    _check_strings(value)
    value = _integral(kind, value)
    body = value.get("text")
    if isinstance(body, str) and len(body.encode("utf-8")) > max_text_bytes:
        raise DeadLetter("oversize", f"text is {len(body.encode())} bytes, limit {max_text_bytes}")
    _, record_type = CONTRACTS[kind]
    return record_type.from_data(value)


def _parse(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DeadLetter(
            "malformed_json", f"{exc.msg} at line {exc.lineno} col {exc.colno}"
        ) from None
    except RecursionError:
        raise DeadLetter("malformed_json", "nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal beyond Python's digit limit
        raise DeadLetter("malformed_json", str(exc)[:200]) from None


def _check_strings(value: dict[str, Any]) -> None:
    """JSON escapes can spell lone surrogates, which no UTF-8 topic or store can carry."""
    for name, field in value.items():
        if isinstance(field, str):
            try:
                field.encode("utf-8")
            except UnicodeEncodeError:
                raise DeadLetter("encoding", f"{name}: lone surrogate in the string") from None


@cache
def _integer_fields(kind: str) -> frozenset[str]:
    properties = load_schema(kind).get("properties", {})
    return frozenset(n for n, p in properties.items() if p.get("type") == "integer")


def _integral(kind: str, value: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema counts ``1.0`` as an integer; the state needs a Python int."""
    ints = _integer_fields(kind)
    return {k: int(v) if k in ints and isinstance(v, float) else v for k, v in value.items()}


def check_key(record: Any, key: bytes | None) -> None:
    """A value keyed by another user, or by no one, would put its state on the wrong partition
    (a null key lands on a random one)."""
    user = getattr(record, "user_id", None)
    if user is None:
        return
    if key is None:
        raise DeadLetter("schema", "message has no key: key it by its user_id")
    if key != str(user).encode():
        raise DeadLetter("schema", f"message key {key[:64]!r} does not match user_id {user!r}")


def _bounded_raw(raw: bytes) -> tuple[str, str, bool]:
    cut = raw[:RAW_LIMIT]
    try:
        return cut.decode("utf-8"), "utf-8", len(raw) > RAW_LIMIT
    except UnicodeDecodeError as exc:
        if (
            len(raw) > RAW_LIMIT
            and exc.start >= len(cut) - 3
            and exc.reason == "unexpected end of data"
        ):
            return cut[: exc.start].decode("utf-8"), "utf-8", True
    b64 = base64.b64encode(raw[: RAW_LIMIT * 3 // 4]).decode("ascii")
    return b64, "base64", len(raw) > RAW_LIMIT * 3 // 4


def dead_letter(
    error: DeadLetter,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | str | None,
    raw: bytes | None,
    now_ms: int,
) -> DeadLetterRecord:
    raw = raw or b""
    text, encoding, truncated = _bounded_raw(raw)
    if isinstance(key, bytes):
        key = key.decode("utf-8", "replace")
    return DeadLetterRecord(
        source_topic=topic,
        partition=partition,
        offset=offset,
        error_kind=error.kind,
        error_message=error.message[:MESSAGE_LIMIT],
        raw=text,
        raw_encoding=encoding,
        raw_bytes=len(raw),
        raw_truncated=truncated,
        key=key[:256] if key else None,
        ts=now_ms,
    )
