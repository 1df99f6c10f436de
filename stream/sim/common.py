"""What the simulator's modules share: event kinds, time bounds, seeded random streams, encoding."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from random import Random
from typing import Any

from stream.sim.phrases import CATEGORY_BANKS

KINDS: tuple[str, ...] = ("reviews", "chats", "clicks")
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_BANKS)
ACTIONS: tuple[str, ...] = ("view", "click", "add_to_cart", "purchase", "skip")
BAD_KINDS: tuple[str, ...] = ("malformed_json", "unknown_action", "oversize", "encoding", "schema")
SPELLS: tuple[str, ...] = ("sad", "angry", "fearful", "joyful")
DEFAULT_START_MS = 1_764_100_000_000  # 2025-11-25T19:46:40Z, a fixed start keeps files reproducible
DEFAULT_RATE = 50.0
MAX_TS = 32_503_680_000_000  # the schemas' upper bound on ts


def rng_for(seed: int, stream: str) -> Random:
    return Random(f"moodstream-sim:{seed}:{stream}")


def pick(rng: Random, cumulative: Sequence[float]) -> int:
    return min(bisect_right(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def clip(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


def id_width(n: int) -> int:
    return max(4, len(str(n)))


def encode_value(value: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, the form values take on the topics and in JSON-lines files."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
