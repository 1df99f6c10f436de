"""The consistency checker of the fault suite: rebuild every user's state from the input topics
with a clean replay (the same core, one process, no faults) and hold the worker's changelog
against it. Like Faust's own killer + checker: it counts what went in and what came out."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stream.adapters.index import FaissItemIndex
from stream.adapters.kafka import make_admin, make_consumer
from stream.adapters.sentiment import OnnxSentimentModel
from stream.core import dedup
from stream.offline.replay import Bound, Replay, read_topics
from stream.offline.replay import _partitions as topic_partitions
from stream.settings import Settings
from stream.worker.processor import Processor, load_user


@dataclass
class Verdict:
    """Events missing from (lost) or folded twice into (double) the worker's latest records."""

    users: int = 0
    events: int = 0
    lost: int = 0
    double: int = 0
    differing: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.users} users, {self.events} events: {self.lost} lost, "
            f"{self.double} double-counted, {len(self.differing)} states differ"
        )


async def read_changelog(settings: Settings, table: str = "users") -> dict[str, Any]:
    """The latest value per key of a table's changelog (None: a tombstone)."""
    from aiokafka import TopicPartition

    topic = f"{settings.app_id}-{table}-changelog"
    tps = [TopicPartition(t, p) for t, p in await topic_partitions(settings, [topic])]
    if not tps:
        return {}
    consumer = make_consumer(settings, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[str, Any] = {}
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for msgs in batch.values():
                for m in msgs:
                    key = json.loads(m.key) if m.key else None
                    latest[str(key)] = None if m.value is None else json.loads(m.value)
        return latest
    finally:
        await consumer.stop()


def clean_replay(settings: Settings) -> Replay:
    """The input topics folded by a clean replay (the same core, one process, no faults)."""
    records = asyncio.run(read_topics(settings, Bound(), Bound()))
    model = OnnxSentimentModel.from_settings(settings)
    processor = Processor(settings, model, FaissItemIndex.load(settings.index_dir))
    replay = Replay(processor, settings)
    replay.run(records)
    return replay


def replay_users(settings: Settings) -> dict[str, Any]:
    """Every user's record as a clean replay of the input topics folds it."""
    return clean_replay(settings).users


def compare(expected: dict[str, Any], live: dict[str, Any]) -> Verdict:
    verdict = Verdict(users=len(expected))
    for user_id, want_raw in expected.items():
        want, want_ids = load_user(want_raw)
        got_raw = live.get(user_id)
        verdict.events += len(want_ids.entries)
        if got_raw is None:
            verdict.lost += len(want_ids.entries)
            verdict.differing.append(user_id)
            continue
        got, got_ids = load_user(got_raw)
        missing = {h for h, _ in want_ids.entries} - {h for h, _ in got_ids.entries}
        verdict.lost += len(missing)
        if not missing and not _same_state(want, got):
            verdict.double += 1  # every event is there once by id, yet the state has more in it
            verdict.differing.append(user_id)
        elif missing:
            verdict.differing.append(user_id)
    return verdict


def _same_state(a: Any, b: Any) -> bool:
    ea, eb = np.asarray(a.emotion.sums), np.asarray(b.emotion.sums)
    if not np.allclose(ea, eb, rtol=1e-3, atol=1e-5):
        return False
    ta, tb = a.taste.vector, b.taste.vector
    if (ta is None) != (tb is None):
        return False
    if ta is not None and not np.allclose(ta, tb, rtol=1e-3, atol=1e-5):
        return False
    return bool(abs(a.taste.weight - b.taste.weight) <= 1e-3 * max(1.0, abs(a.taste.weight)))


def wait_for_all(settings: Settings, expected_ids: dict[str, set[str]], timeout: float) -> float:
    """Poll the changelog until every user's record holds all their event ids; seconds taken."""
    started = time.monotonic()
    want = {u: {dedup.hash_id(e) for e in ids} for u, ids in expected_ids.items()}
    while time.monotonic() - started < timeout:
        live = asyncio.run(read_changelog(settings))
        if all(_ids_of(live.get(u)) >= hashes for u, hashes in want.items()):
            return time.monotonic() - started
        time.sleep(1.0)
    return float("inf")


def _ids_of(raw: Any) -> set[int]:
    if raw is None:
        return set()
    return {h for h, _ in load_user(raw)[1].entries}


async def uncommitted(settings: Settings, kinds: tuple[str, ...]) -> dict[str, int]:
    """Per input partition, how far the group's committed offset is behind the end."""
    from aiokafka import TopicPartition

    admin = make_admin(settings)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(settings.app_id)
    finally:
        await admin.close()
    names = {settings.topic(k) for k in kinds}
    tps = [TopicPartition(t, p) for t, p in await topic_partitions(settings, sorted(names))]
    consumer = make_consumer(settings)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    behind = {}
    for tp in tps:
        committed = offsets[tp].offset if tp in offsets else 0
        if ends[tp] - max(committed, 0) > 0:
            behind[f"{tp.topic}[{tp.partition}]"] = ends[tp] - max(committed, 0)
    return behind


def wait_for_commits(settings: Settings, kinds: tuple[str, ...], timeout: float) -> dict[str, int]:
    """Partitions whose commit is still behind after ``timeout`` (a stuck commit)."""
    deadline = time.monotonic() + timeout
    behind = asyncio.run(uncommitted(settings, kinds))
    while behind and time.monotonic() < deadline:
        time.sleep(1.0)
        behind = asyncio.run(uncommitted(settings, kinds))
    return behind
