"""Reading a rendered server.properties back, for the broker tests."""

from __future__ import annotations


def parse_properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}
