"""Click options generated from ``Settings``; each flag falls back to its ``MOODSTREAM_*`` env."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
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


def seed_option(help: str) -> Callable[[F], F]:
    """``--seed N``, 0 by default: every command that draws at random takes its seed so."""
    return click.option("--seed", type=int, default=0, show_default=True, help=help)


def users_option(help: str) -> Callable[[F], F]:
    """``--users N``: how many users a simulation draws (200 by default, as ``SimConfig``)."""
    return click.option("--users", type=int, default=200, show_default=True, help=help)


def count_option(
    flag: str,
    default: int | None,
    help: str,
    *,
    least: int = 1,
    dest: str | None = None,
    env: bool = False,
) -> Callable[[F], F]:
    """A whole number of at least ``least``; a default other than None shows in --help. With
    ``env`` it falls back to ``MOODSTREAM_<FLAG>``, as the settings flags do (shown in --help)."""
    names = (flag,) if dest is None else (flag, dest)
    extra: dict[str, Any] = {} if default is None else {"show_default": True}
    if env:
        extra.update(envvar=env_name(flag.lstrip("-").replace("-", "_")), show_envvar=True)
    return click.option(*names, type=click.IntRange(min=least), default=default, help=help, **extra)


def share_option(
    flag: str, low: float, high: float, default: float, help: str | None = None
) -> Callable[[F], F]:
    """A fraction in [low, high] (a share of the data, a recall target), its default shown."""
    return click.option(
        flag, type=click.FloatRange(low, high), default=default, show_default=True, help=help
    )


def path_option(flag: str, help: str, *, dest: str | None = None, **path: Any) -> Callable[[F], F]:
    """A ``pathlib.Path`` option; ``path``: ``click.Path``'s checks (``dir_okay``, ``exists``),
    and ``default`` / ``required`` / ``show_default`` for the option itself."""
    extra = {k: path.pop(k) for k in ("default", "required", "show_default") if k in path}
    names = (flag,) if dest is None else (flag, dest)
    return click.option(*names, type=click.Path(path_type=Path, **path), help=help, **extra)


# The commands that draw a rich progress bar on stderr (backtest, replay) switch it the same way.
progress_option = click.option(
    "--progress/--no-progress", default=True, help="progress bar on stderr"
)


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
