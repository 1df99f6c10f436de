"""Topic kinds and names: what every producer and consumer of the contract agrees on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stream.contract.records import CONTRACTS
from stream.errors import ConfigError
from stream.settings import Settings

INPUT_KINDS: tuple[str, ...] = ("reviews", "chats", "clicks", "erasure")
OUTPUT_KINDS: tuple[str, ...] = ("recommendations", "deadletter")
ALL_KINDS: tuple[str, ...] = (*INPUT_KINDS, *OUTPUT_KINDS)
TABLES: tuple[str, ...] = ("users", "items")  # the worker's Faust tables


def resolve(settings: Settings, topic: str) -> tuple[str, str]:
    """Accept a short kind (``reviews``) or a full topic name; return (kind, full name)."""
    if topic in CONTRACTS:
        return topic, settings.topic(topic)
    for kind in CONTRACTS:
        if topic == settings.topic(kind) or topic.endswith(f"moodstream.{kind}.v1"):
            return kind, topic
    known = ", ".join(sorted(CONTRACTS))
    raise ConfigError(f"unknown topic {topic!r}: use one of {known} or a moodstream.<kind>.v1 name")


@dataclass(frozen=True)
class TopicSpec:
    """A topic the worker reads or writes, with the partition count it must have.

    ``strict``: a different count breaks co-partitioning (the inputs, and the internal topics
    Faust pairs with its tables), so the worker refuses it; an output may differ.
    """

    name: str
    partitions: int
    role: str  # input, output or internal
    strict: bool = True
    config: tuple[tuple[str, str], ...] = ()


def worker_topics(settings: Settings) -> list[TopicSpec]:
    """Every topic a worker with these settings reads or writes, Faust's internal ones included
    (their names follow Faust: ``<app id>-<table>-changelog``, ``<app id>-__assignor-__leader``)."""
    n, app = settings.partitions, settings.app_id
    compact = (("cleanup.policy", "compact"),)
    return [
        *(TopicSpec(settings.topic(k), n, "input") for k in INPUT_KINDS),
        *(TopicSpec(settings.topic(k), n, "output", strict=False) for k in OUTPUT_KINDS),
        TopicSpec(item_events_topic(settings), n, "internal"),
        *(TopicSpec(f"{app}-{t}-changelog", n, "internal", config=compact) for t in TABLES),
        TopicSpec(f"{app}-__assignor-__leader", 1, "internal"),
    ]


def item_events_topic(settings: Settings) -> str:
    """The item-keyed repartition topic between the user and the item agents."""
    return f"{settings.app_id}-item-events"


def partition_problems(
    specs: list[TopicSpec], existing: Mapping[str, int], settings: Settings
) -> list[str]:
    """One readable sentence per existing topic whose partition count would break the worker."""
    problems = []
    for spec in specs:
        have = existing.get(spec.name)
        if have is None or have == spec.partitions or not spec.strict:
            continue
        if spec.role == "input":
            fix = (
                f"run every worker with --partitions {have}, or delete the topic and recreate it "
                f"with {spec.partitions} (moodstream topics create --partitions {spec.partitions})"
            )
        else:
            fix = (
                f"it belongs to app id {settings.app_id!r} run with other partitions: use that "
                "count, or a new --app-id (its tables start empty), or delete the app's "
                "internal topics"
            )
        problems.append(
            f"topic {spec.name} has {have} partition(s) but the worker needs {spec.partitions} "
            f"(--partitions): a user's events, tables and outputs must share a partition "
            f"number (co-partitioning); {fix}"
        )
    return problems
