"""The simulator's public names in one place: ``from stream.sim.simulate import Simulation, ...``.

The code lives in ``common`` (kinds, bounds, random streams), ``config``, ``catalog``, ``users``,
``text`` (wording), ``events`` (one event at a time), ``bad_values`` and ``simulation``.
"""

from __future__ import annotations

from stream.sim.catalog import Item, make_catalog
from stream.sim.common import (
    ACTIONS,
    BAD_KINDS,
    CATEGORIES,
    DEFAULT_RATE,
    DEFAULT_START_MS,
    KINDS,
    MAX_TS,
    SPELLS,
    encode_value,
)
from stream.sim.config import Mix, SimConfig, parse_mix
from stream.sim.events import Latent, Message, SimEvent
from stream.sim.simulation import Simulation
from stream.sim.users import User, make_users

__all__ = [
    "ACTIONS",
    "BAD_KINDS",
    "CATEGORIES",
    "DEFAULT_RATE",
    "DEFAULT_START_MS",
    "KINDS",
    "MAX_TS",
    "SPELLS",
    "Item",
    "Latent",
    "Message",
    "Mix",
    "SimConfig",
    "SimEvent",
    "Simulation",
    "User",
    "encode_value",
    "make_catalog",
    "make_users",
    "parse_mix",
]
