"""The kind mix and the simulation config: parsed, normalised, impossible values refused."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stream.errors import ConfigError
from stream.sim.simulate import (
    Mix,
    SimConfig,
    parse_mix,
)


def test_parse_mix_normalises() -> None:
    assert parse_mix("clicks=6, chats=3, reviews=1").shares() == pytest.approx(
        {"clicks": 0.6, "chats": 0.3, "reviews": 0.1}
    )
    assert str(parse_mix("clicks=0.6,chats=0.25,reviews=0.15")) == str(Mix())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clicks=0.6,likes=0.4", "likes"),
        ("clicks", "kind=share"),
        ("clicks=abc", "not a number"),
        ("clicks=-1,chats=1", ">= 0"),
        ("clicks=0,chats=0", "sum to 0"),
        ("clicks=1,clicks=2", "twice"),
        ("", "empty"),
        ("clicks=nan", ">= 0"),
    ],
)
def test_parse_mix_rejects_bad_input(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_mix(text)


@pytest.mark.parametrize(
    "changes",
    [
        {"n_users": 0},
        {"n_items": 3},
        {"n_events": -1},
        {"rate": 0},
        {"duration_s": 0},
        {"bad_rate": 1.0},
        {"start_ms": -5},
        {"id_prefix": "a\nb"},
    ],
)
def test_config_rejects_impossible_values(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**changes)
