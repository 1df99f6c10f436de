"""``moodstream backtest``: temporal backtest of ranker variants on an Amazon review file, or on
ReDial conversations.

Writes ``metrics.json``, ``tuning.json``, ``report.md`` and PNG plots into ``--out``; the model
scores of the review texts are cached under ``--cache-dir`` so a second run skips the model.

ReDial: ``--redial DIR`` (the folder of the published sample: dialogues are split, the last 10%
by conversationId are scored) or ``--train FILE --dataset FILE`` (two ReDial JSON-lines files:
``--train`` replayed first and never scored, ``--dataset`` scored; movie names from
``movies_with_mentions.csv`` next to ``--dataset``). Writes ``metrics.json`` and ``report.md``.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from stream.cli.options import (
    count_option,
    path_option,
    pop_settings,
    progress_option,
    seed_option,
    settings_options,
    share_option,
)

if TYPE_CHECKING:
    from stream.offline.redial_backtest import RedialSplit


class RichSteps:
    """``stream.offline.backtest.Steps`` as a rich progress bar on stderr, one line per stage."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self._task: Any = None

    def start(self, label: str, total: int) -> None:
        if self._task is not None:
            self.progress.update(self._task, completed=self.progress.tasks[-1].total)
        self._task = self.progress.add_task(label, total=max(total, 1))

    def advance(self, n: int = 1) -> None:
        if self._task is not None:
            self.progress.advance(self._task, n)


R = TypeVar("R")


@dataclass(frozen=True)
class _Run:
    """Runs either backtest under the progress bar, then writes and announces its report."""

    kwargs: dict[str, Any]
    given: dict[str, Any]
    variants: Sequence[str]
    info: dict[str, Any]
    started: float

    def __call__(self, run: Callable[..., R], *data: Any) -> R:
        steps = RichSteps(self.kwargs["progress"])
        with steps.progress:
            result = run(
                *data,
                variants=self.variants,
                dataset_info=self.info,
                cache_dir=self.kwargs["cache_dir"],
                steps=steps,
            )
        return result

    def report(self, write: Callable[[Any, Path, str], list[Path]], result: Any) -> list[Path]:
        result.timings["wall_s"] = time.perf_counter() - self.started
        return write(result, self.kwargs["out"], command_line(self.kwargs, self.given))

    def wrote(self, paths: Sequence[Path], result: Any) -> None:
        shown = ", ".join(str(p) for p in paths)
        click.echo(f"wrote {shown} in {result.timings['wall_s']:.0f} s")


def _print_table(
    variants: Mapping[str, Any], width: int, columns: Sequence[tuple[str, str, int, str]]
) -> None:
    """A line per variant: its name in ``width``, then each (heading, metric, width, format)."""
    click.echo(f"{'variant':<{width}}" + "".join(f" {head:>{w}}" for head, _, w, _ in columns))
    for name, v in variants.items():
        cells = "".join(f" {v.metrics[key]:>{w}{fmt}}" for _, key, w, fmt in columns)
        click.echo(f"{name:<{width}}" + cells)


def command_line(params: dict[str, Any], settings_given: dict[str, Any]) -> str:
    """The command that reproduces this run (options at their defaults left out)."""
    parts = ["moodstream", "backtest"]
    for name in ("redial", "train", "dataset"):
        if params.get(name) is not None:
            parts += ["--" + name, str(params[name])]
    parts += ["--out", str(params["out"])]
    defaults = {
        "seed": 0,
        "variants": None,
        "rebuild": "monthly",
        "warmup": "10%",
        "limit": None,
        "tune": True,
        "tune_share": 0.6,
        "resamples": 1000,
        "depth": 100,
        "dev_share": 0.1,
    }
    for name, default in defaults.items():
        value = params.get(name, default)
        if value == default:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + name.replace("_", "-"))
        else:
            parts += [flag, str(value)]
    for name, value in settings_given.items():
        if value is not None:
            parts += ["--" + name.replace("_", "-"), str(value)]
    return shlex.join(parts)


@click.command("backtest")
@path_option(
    "--dataset",
    "Amazon reviews: .json/.json.gz lines (2014/2018), .csv or a .zip holding one; "
    "with --train: the ReDial dialogues to score (JSON lines)",
    dir_okay=False,
)
@path_option(
    "--train",
    "ReDial dialogues (JSON lines) replayed before --dataset and never scored",
    dir_okay=False,
    exists=True,
)
@path_option(
    "--redial",
    "a ReDial folder: split by conversationId, the last --dev-share scored",
    file_okay=False,
    exists=True,
)
@share_option(
    "--dev-share",
    0.01,
    0.9,
    0.1,
    "with --redial: share of the dialogues (the last by conversationId) scored",
)
@path_option(
    "--out", "folder for metrics.json, report.md and the plots", file_okay=False, required=True
)
@seed_option("bootstrap seed")
@click.option(
    "--variants",
    default=None,
    help="comma list (default: all): popularity, taste_only, item_cf, seed_formula, "
    "sentiment_aware, sentiment_aware_no_sentiment, rating_oracle, sentiment_stars",
)
@click.option(
    "--rebuild",
    default="monthly",
    show_default=True,
    help="item index rebuild cadence: monthly, quarterly, yearly, weekly, <N>d, once",
)
@click.option(
    "--warmup",
    default="10%",
    show_default=True,
    help="no test points before: N% of the events, Nd after the first, or a date",
)
@count_option("--limit", None, "only the earliest N reviews (quick runs)")
@click.option(
    "--tune/--no-tune",
    default=True,
    show_default=True,
    help="tune the weights on the first part of the test points, report the rest",
)
@share_option("--tune-share", 0.05, 0.95, 0.6, "share of the test points (by time) used for tuning")
@count_option("--resamples", 1000, "bootstrap resamples", least=10)
@count_option("--depth", 100, "ranked list length MRR is computed over (HR/NDCG use --top-k)")
@path_option(
    "--cache-dir",
    "where model scores of the review texts are cached",
    file_okay=False,
    default=Path("build/backtest-cache"),
    show_default=True,
)
@progress_option
@settings_options
def backtest(**kwargs: Any) -> None:
    """Replay a review data set in time order and score each ranker variant on what each user
    reviewed next (HR, NDCG, MRR, coverage, paired bootstrap CIs); write a report."""
    given = {
        k.removeprefix("settings__"): v
        for k, v in kwargs.items()
        if k.startswith("settings__") and v is not None
    }
    settings = pop_settings(kwargs)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    if kwargs["redial"] is not None or kwargs["train"] is not None:
        redial_backtest(kwargs, settings, given)
        return
    if kwargs["dataset"] is None:
        raise click.UsageError("give --dataset (Amazon reviews), --redial DIR or --train/--dataset")
    from stream.adapters.sentiment import OnnxSentimentModel
    from stream.offline.backtest import Protocol, parse_variants, run_backtest
    from stream.offline.datasets import load_reviews
    from stream.offline.report import write_report

    variants = parse_variants(kwargs["variants"])
    protocol = Protocol(
        k=settings.top_k,
        depth=max(kwargs["depth"], settings.top_k),
        rebuild=kwargs["rebuild"],
        warmup=kwargs["warmup"],
        tune=kwargs["tune"],
        tune_share=kwargs["tune_share"],
        resamples=kwargs["resamples"],
        seed=kwargs["seed"],
    )
    started = time.perf_counter()
    dataset = load_reviews(
        kwargs["dataset"], limit=kwargs["limit"], max_text_bytes=settings.max_text_bytes
    )
    click.echo(f"{kwargs['dataset']}: {dataset.report.summary()}", err=True)
    model = OnnxSentimentModel.from_settings(settings)
    click.echo(f"model {model.version} ({model.variant}) on {model.provider}", err=True)
    info = {"name": Path(kwargs["dataset"]).name, **dataset.report.to_dict()}
    run = _Run(kwargs, given, variants, info, started)
    result = run(run_backtest, dataset.events, model, settings, protocol)
    paths = run.report(write_report, result)
    k = protocol.k
    columns = [
        (f"NDCG@{k}", f"ndcg@{k}", 9, ".4f"),
        (f"HR@{k}", f"hr@{k}", 7, ".4f"),
        ("MRR", "mrr", 7, ".4f"),
        ("cover", "coverage", 6, ".3f"),
    ]
    _print_table(result.variants, 16, columns)
    if result.tuning is not None:
        t = result.tuning
        chosen = ", ".join(f"{k}={v:g}" for k, v in {**t.evidence, **t.rank}.items())
        click.echo(f"tuned on {t.points} points: {chosen}")
    run.wrote(paths, result)


def load_redial_parts(kwargs: dict[str, Any]) -> tuple[RedialSplit, dict[str, Any]]:
    """(the ``RedialSplit``, info) from --redial DIR or --train/--dataset."""
    from stream.offline.redial import load_dialogues, load_movies, load_redial, split_dialogues
    from stream.offline.redial_backtest import RedialSplit

    if kwargs["redial"] is not None:
        if kwargs["train"] is not None or kwargs["dataset"] is not None:
            raise click.UsageError("--redial DIR takes no --train or --dataset")
        data = load_redial(kwargs["redial"])
        train, dev = split_dialogues(data.dialogues, kwargs["dev_share"])
        info = {
            "name": f"ReDial sample in {Path(kwargs['redial']).name}/",
            "split": f"last {kwargs['dev_share']:.0%} of the dialogues by conversationId = dev",
            "skipped": dict(data.skipped),
        }
        return RedialSplit(train, dev, data.movies, data.questionnaires), info
    if kwargs["dataset"] is None:
        raise click.UsageError("--train needs --dataset (the dialogues to score)")
    skipped: dict[str, int] = {}
    train, q_train = load_dialogues(kwargs["train"], skipped)
    dev, q_dev = load_dialogues(kwargs["dataset"], skipped)
    movies: dict[str, str] = {}
    for folder in {Path(kwargs["dataset"]).parent, Path(kwargs["train"]).parent}:
        if (folder / "movies_with_mentions.csv").exists():
            movies.update(load_movies(folder / "movies_with_mentions.csv"))
    for d in (*train, *dev):
        for movie, name in d.mentions.items():
            movies.setdefault(movie, " ".join(name.split()))
    info = {
        "name": f"{Path(kwargs['dataset']).name} after {Path(kwargs['train']).name}",
        "skipped": skipped,
    }
    return RedialSplit(train, dev, movies, {**q_train, **q_dev}), info


def redial_backtest(kwargs: dict[str, Any], settings: Any, given: dict[str, Any]) -> None:
    from stream.adapters.sentiment import OnnxSentimentModel
    from stream.offline import redial_backtest as rb

    variants = rb.parse_variants(kwargs["variants"])
    started = time.perf_counter()
    data, info = load_redial_parts(kwargs)
    click.echo(f"ReDial: {len(data.train)} train dialogues, {len(data.dev)} scored", err=True)
    model = OnnxSentimentModel.from_settings(settings)
    protocol = rb.Protocol(
        depth=max(kwargs["depth"], 150),
        tune=kwargs["tune"],
        resamples=kwargs["resamples"],
        seed=kwargs["seed"],
    )
    run = _Run(kwargs, given, variants, info, started)
    result = run(rb.run_redial, data, model, settings, protocol)
    paths = run.report(rb.write_report, result)
    columns = [(f"R@{n}", f"recall@{n}", 7, ".4f") for n in (1, 10, 50)]
    columns += [("NDCG@10", "ndcg@10", 8, ".4f"), ("MRR", "mrr", 7, ".4f")]
    _print_table(result.variants, 30, columns)
    run.wrote(paths, result)
