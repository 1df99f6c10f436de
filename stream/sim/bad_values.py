"""Bad values derived from good ones, each of the dead-letter kind it claims to cause."""

from __future__ import annotations

from random import Random

from stream.sim.common import encode_value
from stream.sim.events import SimEvent


def corrupt(rng: Random, event: SimEvent) -> tuple[str, bytes]:
    """A bad value derived from a good one; returns the dead-letter kind it must cause."""
    value = dict(event.value)
    value["event_id"] = f"{value['event_id']}-bad"
    choices = ["malformed_json", "encoding", "schema"]
    choices.append("unknown_action" if event.kind == "clicks" else "oversize")
    kind = rng.choice(choices)
    raw = encode_value(value)
    if kind == "malformed_json":
        if rng.random() < 0.5:
            return kind, raw[: rng.randint(1, len(raw) - 2)]
        return kind, repr(value).encode("utf-8")  # single quotes: Python, not JSON
    if kind == "encoding":
        marker = b'"event_id":"'
        cut = raw.index(marker) + len(marker)
        return kind, raw[:cut] + rng.choice((b"\xff\xfe", b"\xc3\x28", b"\x80")) + raw[cut:]
    if kind == "unknown_action":
        value["action"] = rng.choice(("like", "wishlist", "share", "PURCHASE"))
        return kind, encode_value(value)
    if kind == "oversize":
        text = str(value["text"]) + " "
        value["text"] = (text * (9000 // len(text) + 2))[: rng.randint(9000, 20000)]
        return kind, encode_value(value)
    if rng.random() < 0.5:
        del value["user_id"]
    else:
        value["ts"] = "2025-11-25T19:46:40Z"
    return kind, encode_value(value)
