"""Click options generated from ``Settings``; each flag falls back to its ``MOODSTREAM_*`` env."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any, TypeVar

import click

from stream.settings import Settings, env_name, from_mapping

F = TypeVar("F", bound=Callable[..., Any])
_TYPES: dict[str, Any] = {"int": int, "float": float, "str": str, "bool": click.BOOL}


def settings_options(func: F) -> F:
    """Add ``--<field>`` for every settings field; ``--help`` shows the env var of each."""
    for f in reversed(fields(Settings)):
        default = f.default if f.default is not MISSING else None
        func = click.option(
            "--" + f.name.replace("_", "-"),
            f"settings__{f.name}",
            type=_TYPES[str(f.type)],
            default=None,
            envvar=env_name(f.name),
            show_envvar=True,
            help=f"{f.metadata.get('help', '')} [default: {_shown(default)}]",
        )(func)
    return func


def _shown(default: Any) -> str:
    if isinstance(default, bool):
        return str(default).lower()
    return repr(default) if default == "" else str(default)


def quiet_kafka_logs() -> None:
    """Keep aiokafka's log lines (reconnect warnings, tracebacks) off a command's output: the
    command reports what went wrong itself, in one line."""
    import logging

    for name in ("aiokafka", "kafka"):
        logger = logging.getLogger(name)
        logger.addHandler(logging.NullHandler())
        logger.propagate = False


def pop_settings(kwargs: dict[str, Any], **overrides: Any) -> Settings:
    """Remove the settings flags from a command's kwargs and build the frozen object."""
    values = {
        k.removeprefix("settings__"): kwargs.pop(k)
        for k in list(kwargs)
        if k.startswith("settings__")
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return from_mapping(values)
