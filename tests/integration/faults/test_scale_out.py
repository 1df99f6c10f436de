"""Several workers in one consumer group on the real broker: every worker's board holds every
item's state (whichever worker's partitions its events came in on); a worker SIGKILLed under
load leaves its partitions to the other, and a group scaled 1 -> 3 -> 1 mid-stream hands its
partitions on, with no event or item delta lost or applied twice (user and item state held
against a clean single-process replay of the same input topics)."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from typing import Any

import pytest

from stream.adapters.index import read_ids
from stream.core.state import ItemState
from stream.devtools.broker import free_port
from stream.devtools.demo import fetch_health, fetch_metrics
from tests.integration.faults.checker import clean_replay, read_changelog
from tests.integration.faults.test_faults import USERS, Load, Rig, _check, consume, make_rig

pytestmark = pytest.mark.integration
__all__ = ["make_rig"]  # the fixture, shared with the single-worker fault suite
FANS = 60


def _metric(port: int, name: str) -> float:
    try:
        return fetch_metrics(port).get(name, 0.0)
    except OSError:
        return 0.0


def _wait(check: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _two(rig: Rig, **overrides: Any) -> list[tuple[Any, int]]:
    out = []
    for name in ("w1", "w2"):
        port = free_port()
        out.append((rig.worker(name, web_port=port, session_timeout_s=8, **overrides), port))
    for proc, _ in out:
        proc.start()
    return out


def _both_serving(rig: Rig, load: Load, ports: list[int]) -> None:
    """Cold users on every partition until both workers have sent recommendations: both own
    partitions (the group has settled)."""
    n = 0

    def served() -> bool:
        nonlocal n
        chats = [load.event(f"warm{n + i}", 1, 5_000_000 + n + i) for i in range(8)]
        n += 8
        rig.send(load, chats)
        time.sleep(0.5)
        return all(_metric(p, "moodstream_recommendations_total") > 0 for p in ports)

    _wait(served, 90, "both workers to serve recommendations")


def test_every_worker_ranks_with_items_folded_on_the_other(
    kafka_broker: Any, make_rig: Any
) -> None:
    rig = make_rig(kafka_broker.url, kafka_broker.bootstrap, "memory://")
    load = Load(read_ids(rig.settings.index_dir))
    workers = _two(rig)
    ports = [p for _, p in workers]
    _both_serving(rig, load, ports)
    star = load.items[0]
    fans = []
    for i in range(FANS):
        base = {"event_id": f"fan{i}-r", "user_id": f"fan{i}", "ts": load.now + i}
        text = "Absolutely wonderful, I love it, the best I have ever owned."
        fans.append(("reviews", {**base, "item_id": star, "text": text, "rating": 5}))
    rig.send(load, fans)

    def boards_agree() -> bool:
        status = [fetch_health(p)["board"] for p in ports]
        return all(s["items"] >= 1 and s["lag"] == 0 and s["caught_up"] for s in status)

    try:
        took = _wait(boards_agree, 90, "both boards to hold the item")
    except AssertionError:
        for p in ports:
            m = fetch_metrics(p)
            print(p, fetch_health(p)["board"], {k: v for k, v in m.items() if "item" in k})
        raise
    time.sleep(1.5)  # the ranker's popular list is cached for a second (POPULAR_REFRESH_MS)
    # Cold users on every partition: lists are popularity, and the star is the popular item
    # on both workers, whichever owns the star's partition.
    before = [_metric(p, "moodstream_recommendations_total") for p in ports]
    probes = [load.event(f"probe{i}", 1, 6_000_000 + i) for i in range(40)]
    rig.send(load, probes)
    ids = {v["event_id"] for _, v in probes}
    recs = asyncio.run(
        consume(
            rig.bootstrap,
            rig.settings.topic("recommendations"),
            timeout=60,
            until=lambda r: ids <= {v["trigger_event_id"] for _, v in r if v},
        )
    )
    lists = {v["trigger_event_id"]: v["items"] for _, v in recs if v}
    lists = {e: items for e, items in lists.items() if e in ids}
    assert set(lists) == ids
    missing = [e for e, items in lists.items() if star not in {i["item_id"] for i in items}]
    assert not missing, (f"{len(missing)} of {len(ids)} lists lack the item", lists[missing[0]])
    after = [_metric(p, "moodstream_recommendations_total") for p in ports]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    fresh = [_metric(p, "moodstream_board_freshness_seconds_count") for p in ports]
    assert all(f > 0 for f in fresh)
    print(f"two workers: both boards hold the item {took:.1f}s after the reviews were sent")


def _item_diff(want: dict[str, Any], got: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(deltas missing, deltas extra, items whose state differs) by counts and sums."""
    lost = extra = 0
    differ = []
    for item_id, raw in want.items():
        w = ItemState.from_dict(raw)
        g = ItemState() if got.get(item_id) is None else ItemState.from_dict(got[item_id])
        dn = (g.affect.count + g.popularity.count) - (w.affect.count + w.popularity.count)
        lost += max(-dn, 0)
        extra += max(dn, 0)
        close = math.isclose(g.affect.total, w.affect.total, rel_tol=1e-6, abs_tol=1e-9)
        close &= math.isclose(g.popularity.score, w.popularity.score, rel_tol=1e-6)
        if dn or not close:
            differ.append(item_id)
    return lost, extra, differ


def _items_match_replay(rig: Rig, label: str) -> None:
    """The items changelog reaches the item state a clean replay folds (no delta lost or
    applied twice); its figures are printed either way."""
    want = dict(clean_replay(rig.settings).items)
    assert want
    result: dict[str, Any] = {}

    def items_match() -> bool:
        got = asyncio.run(read_changelog(rig.settings, "items"))
        result["diff"] = _item_diff(want, got)
        return not result["diff"][2]

    try:
        _wait(items_match, 60, "the items changelog to match the replay")
    finally:
        lost, extra, differ = result.get("diff", (None, None, []))
        print(
            f"{label}: {len(want)} items, {lost} deltas lost, {extra} extra, "
            f"{len(differ)} items differ"
        )


def test_a_worker_killed_under_load_leaves_no_item_delta_lost_or_doubled(
    kafka_broker: Any, make_rig: Any
) -> None:
    rig = make_rig(kafka_broker.url, kafka_broker.bootstrap, "memory://")
    load = Load(read_ids(rig.settings.index_dir))
    (_, p1), (w2, p2) = _two(rig)
    _both_serving(rig, load, [p1, p2])
    rig.send(load, load.events(0, 3))
    rig.send(load, load.events(1, 3)[: USERS * 2])  # in flight when the signal lands
    w2.stop(signal.SIGKILL)
    rig.send(load, load.events(1, 3)[USERS * 2 :])
    rig.send(load, load.events(2, 3))
    _check(rig, load, "two workers, one SIGKILLed")  # users: 0 lost, 0 double-counted
    _items_match_replay(rig, "two workers, one SIGKILLed")
    dropped = _metric(p1, "moodstream_item_deltas_dropped_total")
    print(f"redelivered item deltas the survivor dropped: {dropped:.0f}")


def test_scale_one_to_three_to_one_mid_stream(kafka_broker: Any, make_rig: Any) -> None:
    """1 -> 3 -> 1 while events flow: user and item state both equal a clean replay."""
    rig = make_rig(kafka_broker.url, kafka_broker.bootstrap, "memory://")
    load = Load(read_ids(rig.settings.index_dir))
    first = rig.worker("w1", web_port=free_port(), session_timeout_s=8)
    first.start()
    rig.send(load, load.events(0, 3))
    joiners = [rig.worker(n, web_port=free_port(), session_timeout_s=8) for n in ("w2", "w3")]
    for proc in joiners:
        proc.start()  # 1 -> 3: two rebalances while events are in flight
    rig.send(load, load.events(1, 3)[: USERS * 2])
    time.sleep(3.0)
    rig.send(load, load.events(1, 3)[USERS * 2 :])
    for proc in joiners:
        proc.stop(signal.SIGTERM)  # 3 -> 1
    rig.send(load, load.events(2, 3))
    _check(rig, load, "scale 1-3-1")
    _items_match_replay(rig, "scale 1-3-1")
