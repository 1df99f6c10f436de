"""Shared simulation runs for the simulator tests (module-scoped: built once per test file)."""

from __future__ import annotations

import pytest

from stream.sim.simulate import SimConfig, SimEvent, Simulation

N_EVENTS = 4000


@pytest.fixture(scope="module")
def sim() -> Simulation:
    return Simulation(SimConfig(seed=11, n_events=N_EVENTS))


@pytest.fixture(scope="module")
def events(sim: Simulation) -> list[SimEvent]:
    return list(sim.generate())


@pytest.fixture(scope="module")
def long_run() -> tuple[Simulation, list[SimEvent]]:
    """Enough events per user for per-user statistics (~100 each)."""
    simulation = Simulation(SimConfig(seed=3, n_users=100, n_events=10_000))
    return simulation, list(simulation.generate())
