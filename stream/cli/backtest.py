"""``moodstream backtest``: temporal backtest of ranker variants on an Amazon review file.

Writes ``metrics.json``, ``tuning.json``, ``report.md`` and PNG plots into ``--out``; the model
scores of the review texts are cached under ``--cache-dir`` so a second run skips the model.
"""

from __future__ import annotations

import logging
import shlex
import time
from pathlib import Path
from typing import Any

import click

from stream.cli.options import pop_settings, settings_options


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


def command_line(params: dict[str, Any], settings_given: dict[str, Any]) -> str:
    """The command that reproduces this run (options at their defaults left out)."""
    parts = [
        "moodstream",
        "backtest",
        "--dataset",
        str(params["dataset"]),
        "--out",
        str(params["out"]),
    ]
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
    }
    for name, default in defaults.items():
        value = params[name]
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
@click.option(
    "--dataset",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Amazon reviews: .json/.json.gz lines (2014/2018), .csv or a .zip holding one",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="folder for metrics.json, report.md and the plots",
)
@click.option("--seed", type=int, default=0, show_default=True, help="bootstrap seed")
@click.option(
    "--variants",
    default=None,
    help="comma list (default: all): popularity, taste_only, seed_formula, "
    "sentiment_aware, rating_oracle, sentiment_stars",
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
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="only the earliest N reviews (quick runs)",
)
@click.option(
    "--tune/--no-tune",
    default=True,
    show_default=True,
    help="tune the weights on the first part of the test points, report the rest",
)
@click.option(
    "--tune-share",
    type=click.FloatRange(0.05, 0.95),
    default=0.6,
    show_default=True,
    help="share of the test points (by time) used for tuning",
)
@click.option(
    "--resamples",
    type=click.IntRange(min=10),
    default=1000,
    show_default=True,
    help="bootstrap resamples",
)
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="ranked list length MRR is computed over (HR/NDCG use --top-k)",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("build/backtest-cache"),
    show_default=True,
    help="where model scores of the review texts are cached",
)
@click.option("--progress/--no-progress", default=True, help="progress bar on stderr")
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
    steps = RichSteps(kwargs["progress"])
    info = {"name": Path(kwargs["dataset"]).name, **dataset.report.to_dict()}
    with steps.progress:
        result = run_backtest(
            dataset.events,
            model,
            settings,
            protocol,
            variants=variants,
            dataset_info=info,
            cache_dir=kwargs["cache_dir"],
            steps=steps,
        )
    result.timings["wall_s"] = time.perf_counter() - started
    paths = write_report(result, kwargs["out"], command_line(kwargs, given))
    k = protocol.k
    click.echo(f"{'variant':<16} {'NDCG@' + str(k):>9} {'HR@' + str(k):>7} {'MRR':>7} {'cover':>6}")
    for name, v in result.variants.items():
        m = v.metrics
        click.echo(
            f"{name:<16} {m[f'ndcg@{k}']:>9.4f} {m[f'hr@{k}']:>7.4f} {m['mrr']:>7.4f} "
            f"{m['coverage']:>6.3f}"
        )
    if result.tuning is not None:
        t = result.tuning
        chosen = ", ".join(f"{k}={v:g}" for k, v in {**t.evidence, **t.rank}.items())
        click.echo(f"tuned on {t.points} points: {chosen}")
    click.echo(f"wrote {', '.join(str(p) for p in paths)} in {result.timings['wall_s']:.0f} s")
