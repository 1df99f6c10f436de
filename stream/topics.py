"""Topic names and broker addresses shared by the worker and the CLI tools."""

from __future__ import annotations

from stream.errors import ConfigError
from stream.records import CONTRACTS
from stream.settings import Settings

INPUT_KINDS: tuple[str, ...] = ("reviews", "chats", "clicks", "erasure")
ALL_KINDS: tuple[str, ...] = (*INPUT_KINDS, "recommendations", "deadletter")


def bootstrap_servers(broker_url: str) -> str:
    """``kafka://h1:9092,kafka://h2:9092`` or ``h1:9092;h2:9092`` -> ``h1:9092,h2:9092``."""
    hosts = [h.strip() for h in broker_url.replace(";", ",").split(",") if h.strip()]
    if not hosts:
        raise ConfigError("broker URL is empty")
    return ",".join(h.removeprefix("kafka://").rstrip("/") for h in hosts)


def resolve(settings: Settings, topic: str) -> tuple[str, str]:
    """Accept a short kind (``reviews``) or a full topic name; return (kind, full name)."""
    if topic in CONTRACTS:
        return topic, settings.topic(topic)
    for kind in CONTRACTS:
        if topic == settings.topic(kind) or topic.endswith(f"moodstream.{kind}.v1"):
            return kind, topic
    known = ", ".join(sorted(CONTRACTS))
    raise ConfigError(f"unknown topic {topic!r}: use one of {known} or a moodstream.<kind>.v1 name")
