"""Times as users type them on the command line: epoch milliseconds or ISO dates."""

from __future__ import annotations

import datetime as dt

from stream.errors import ConfigError


def parse_when(text: str) -> int:
    """Epoch ms from digits (epoch ms) or an ISO date/time (UTC when no offset is given)."""
    value = text.strip()
    if value.lstrip("-").isdigit():
        return int(value)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{text!r} is neither epoch ms nor an ISO date/time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)
