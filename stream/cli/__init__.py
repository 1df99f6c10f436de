"""The ``moodstream`` command: a click group whose sub-commands load lazily.

Lazy loading keeps ``moodstream --help`` fast and lets a command that needs no Faust, ONNX Runtime
or torch start without importing them. Any ``MoodstreamError`` becomes one readable line.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from stream.errors import MoodstreamError

# command name -> "module:attribute" of a click.Command
COMMANDS: dict[str, str] = {
    "broker": "stream.cli.broker:broker",
    "worker": "stream.cli.worker:worker",
    "produce": "stream.cli.topics:produce",
    "tail": "stream.cli.topics:tail",
    "score": "stream.cli.score:score",
    "export": "export.cli:export",
    "index": "stream.cli.index:index",
    "items": "stream.cli.index:items",
    "simulate": "stream.cli.simulate:simulate",
    "demo": "stream.cli.demo:demo",
    "replay": "stream.cli.replay:replay",
    "backtest": "stream.cli.backtest:backtest",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(("torch", "transformers", "onnx")):
                raise click.ClickException(
                    f"`moodstream {cmd_name}` needs the [export] extra: pip install -e '.[export]'"
                ) from exc
            raise
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="moodstream")
def cli() -> None:
    """moodstream: emotion-aware recommendations from Kafka streams."""


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="moodstream", standalone_mode=True)
    except MoodstreamError as exc:
        click.echo(f"moodstream: error: {exc}", err=True)
        sys.exit(2)
