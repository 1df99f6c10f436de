"""A simulation run: deterministic, schema-valid, time-ordered, with the mix and truth asked."""

from __future__ import annotations

import json
from collections import Counter
from itertools import islice, pairwise

import pytest

from stream.contract.decoding import validate_value
from stream.sim.simulate import (
    DEFAULT_START_MS,
    SimConfig,
    SimEvent,
    Simulation,
    make_catalog,
    make_users,
    parse_mix,
)


def test_same_seed_gives_identical_catalog_events_and_truth() -> None:
    a, b = Simulation(SimConfig(seed=5, n_events=800)), Simulation(SimConfig(seed=5, n_events=800))
    assert [i.catalog_row() for i in a.catalog] == [i.catalog_row() for i in b.catalog]
    assert list(a.events()) == list(b.events())
    assert json.dumps(a.truth()) == json.dumps(b.truth())


def test_iterating_twice_restarts_the_stream() -> None:
    simulation = Simulation(SimConfig(seed=5, n_events=300))
    assert list(simulation.events()) == list(simulation.events())


def test_different_seeds_differ() -> None:
    a = list(Simulation(SimConfig(seed=1, n_events=200)).events())
    b = list(Simulation(SimConfig(seed=2, n_events=200)).events())
    assert a != b
    assert make_catalog(1, 50)[0].text != make_catalog(2, 50)[0].text
    assert make_users(1, 5)[0].taste != make_users(2, 5)[0].taste


def test_rate_moves_timestamps_only() -> None:
    slow = list(Simulation(SimConfig(seed=4, n_events=500, rate=5)).events())
    fast = list(Simulation(SimConfig(seed=4, n_events=500, rate=500)).events())
    strip = [(k, {f: x for f, x in v.items() if f != "ts"}) for k, v in slow]
    assert strip == [(k, {f: x for f, x in v.items() if f != "ts"}) for k, v in fast]
    assert slow[-1][1]["ts"] - slow[0][1]["ts"] > 50 * (fast[-1][1]["ts"] - fast[0][1]["ts"])


def test_catalog_does_not_depend_on_users_or_events() -> None:
    a = Simulation(SimConfig(seed=2, n_users=10, n_events=10))
    b = Simulation(SimConfig(seed=2, n_users=300, n_events=5000))
    assert [i.catalog_row() for i in a.catalog] == [i.catalog_row() for i in b.catalog]


def test_every_value_validates_against_its_schema(events: list[SimEvent]) -> None:
    for event in events:
        validate_value(event.kind, event.value)  # raises DeadLetter on any violation
    kinds = {e.kind for e in events}
    assert kinds == {"reviews", "chats", "clicks"}
    optional = Counter()
    for e in events:
        optional.update(f for f in ("rating", "item_id", "dwell_ms") if f in e.value)
    assert all(optional[f] > 0 for f in ("rating", "item_id", "dwell_ms"))


def test_event_ids_unique_and_ts_strictly_increasing(events: list[SimEvent]) -> None:
    ids = [e.value["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    ts = [e.value["ts"] for e in events]
    assert ts[0] == DEFAULT_START_MS
    assert all(b > a for a, b in pairwise(ts))


def test_timestamps_follow_the_simulated_rate() -> None:
    evs = list(Simulation(SimConfig(seed=1, n_events=2000, rate=20, start_ms=1_000)).events())
    span_s = (evs[-1][1]["ts"] - evs[0][1]["ts"]) / 1000
    assert evs[0][1]["ts"] == 1_000
    assert 2000 / span_s == pytest.approx(20, rel=0.1)


def test_duration_bounds_simulated_time() -> None:
    evs = list(Simulation(SimConfig(seed=1, n_events=None, duration_s=10, rate=50)).events())
    assert 400 <= len(evs) <= 600
    assert evs[-1][1]["ts"] < DEFAULT_START_MS + 10_000


def test_stream_without_limits_is_endless() -> None:
    evs = list(islice(Simulation(SimConfig(seed=1, n_events=None)).events(), 25_000))
    assert len(evs) == 25_000


def test_mix_proportions_within_tolerance(events: list[SimEvent]) -> None:
    counts = Counter(e.kind for e in events)
    assert counts["clicks"] / len(events) == pytest.approx(0.60, abs=0.03)
    assert counts["chats"] / len(events) == pytest.approx(0.25, abs=0.03)
    assert counts["reviews"] / len(events) == pytest.approx(0.15, abs=0.03)


def test_custom_mix_is_respected() -> None:
    only = Counter(
        k for k, _ in Simulation(SimConfig(n_events=300, mix=parse_mix("chats=1"))).events()
    )
    assert only == {"chats": 300}
    halves = Counter(
        k
        for k, _ in Simulation(
            SimConfig(n_events=2000, mix=parse_mix("reviews=1,clicks=1"))
        ).events()
    )
    assert set(halves) == {"reviews", "clicks"}
    assert halves["reviews"] / 2000 == pytest.approx(0.5, abs=0.05)


def test_truth_describes_the_run(sim: Simulation, events: list[SimEvent]) -> None:
    truth = json.loads(json.dumps(sim.truth()))
    assert truth["seed"] == 11
    assert truth["item_category"] == {i.item_id: i.category for i in sim.catalog}
    assert truth["counts"]["clicks"] == sum(e.kind == "clicks" for e in events)
    assert truth["last_ts"] == events[-1].value["ts"]
    user = sim.users[0]
    entry = truth["users"][user.user_id]
    assert sum(entry["taste"].values()) == pytest.approx(1.0, abs=1e-5)
    assert entry["top_categories"][:2] == user.top_categories(2)
    assert entry["events"] == sum(e.value["user_id"] == user.user_id for e in events)
    assert sum(entry["mood"]["share"].values()) == pytest.approx(1.0, abs=1e-5)
    spells = [s for u in truth["users"].values() for s in u["mood"]["spells"]]
    assert spells and all(s["start_ts"] <= s["end_ts"] and s["events"] >= 1 for s in spells)
    assert sum(u["events"] for u in truth["users"].values()) == sim.config.n_events
