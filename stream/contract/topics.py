"""Topic kinds and names: what every producer and consumer of the contract agrees on."""

from __future__ import annotations

from stream.contract.records import CONTRACTS
from stream.errors import ConfigError
from stream.settings import Settings

INPUT_KINDS: tuple[str, ...] = ("reviews", "chats", "clicks", "erasure")
ALL_KINDS: tuple[str, ...] = (*INPUT_KINDS, "recommendations", "deadletter")


def resolve(settings: Settings, topic: str) -> tuple[str, str]:
    """Accept a short kind (``reviews``) or a full topic name; return (kind, full name)."""
    if topic in CONTRACTS:
        return topic, settings.topic(topic)
    for kind in CONTRACTS:
        if topic == settings.topic(kind) or topic.endswith(f"moodstream.{kind}.v1"):
            return kind, topic
    known = ", ".join(sorted(CONTRACTS))
    raise ConfigError(f"unknown topic {topic!r}: use one of {known} or a moodstream.<kind>.v1 name")
