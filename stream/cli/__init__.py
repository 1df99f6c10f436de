"""The ``moodstream`` command: a click group whose sub-commands load lazily.

Lazy loading keeps ``moodstream --help`` fast and lets a command that needs no Faust, ONNX Runtime
or torch start without importing them. Any ``MoodstreamError`` becomes one readable line.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from stream.errors import MoodstreamError

# command name -> ("module:attribute" of a click.Command, one-line help shown by --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "broker": (
        "stream.cli.broker:broker",
        "Run a local Apache Kafka broker (KRaft) in the foreground.",
    ),
    "worker": ("stream.cli.worker:worker", "Run the stream worker (Faust agents)."),
    "produce": ("stream.cli.topics:produce", "Send JSON lines to a topic, validated first."),
    "tail": ("stream.cli.topics:tail", "Print a topic's records as they arrive."),
    "topics": ("stream.cli.topics:topics", "Create or check the worker's topics."),
    "state": ("stream.cli.state:state", "Show a user's mood, taste and recent items."),
    "deadletters": (
        "stream.cli.deadletters:deadletters",
        "Re-send dead letters to their source topics.",
    ),
    "score": ("stream.cli.score:score", "Score texts (one per line) with the sentiment model."),
    "export": ("export.cli:export", "Train the model heads and export ONNX (needs [export])."),
    "index": ("stream.cli.index:index", "Build item indexes."),
    "items": ("stream.cli.index:items", "Print the item ids of an index."),
    "simulate": ("stream.cli.simulate:simulate", "Generate a catalog and an event stream."),
    "demo": ("stream.cli.demo:demo", "Broker + worker + simulator with a live view."),
    "replay": ("stream.cli.replay:replay", "Replay a topic range or a dataset through the core."),
    "backtest": ("stream.cli.backtest:backtest", "Temporal backtest of ranker variants."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, attr = entry[0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in {"torch", "transformers", "onnx"}:
                raise click.ClickException(
                    f"`moodstream {cmd_name}` needs the [export] extra: pip install -e '.[export]'"
                ) from exc
            raise
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="moodstream")
def cli() -> None:
    """moodstream: emotion-aware recommendations from Kafka streams."""


def error_line(message: str) -> str:
    """The CLI's one error format: ``moodstream: error: <one line>``."""
    return "moodstream: error: " + " ".join(str(message).split())


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI. Every failure, ours or click's, is one ``moodstream: error:`` line on stderr:
    exit 2 for settings, usage and broker problems, click's own code for its other errors."""
    # Ranking multiplies small matrices per event; a multi-threaded BLAS only adds thread hand-offs
    # there (measured: 44 vs 192 clicks/s per worker). Must be set before numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        result = cli.main(args=argv, prog_name="moodstream", standalone_mode=False)
    except MoodstreamError as exc:
        click.echo(error_line(str(exc)), err=True)
        sys.exit(2)
    except click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        click.echo(error_line(exc.format_message()) + hint, err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(error_line(exc.format_message()), err=True)
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo(error_line("interrupted"), err=True)
        sys.exit(130)
    if isinstance(result, int) and not isinstance(result, bool):
        sys.exit(result)  # click.exceptions.Exit (--help, --version) returns its code
    sys.exit(0)
