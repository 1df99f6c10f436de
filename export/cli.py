"""``moodstream export``: train the heads, then export the shipped ONNX artifact."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from export.train_config import TrainConfig
from stream.settings import DEFAULT_MODEL_DIR, REPO_ROOT

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_WORK_DIR = REPO_ROOT / "build" / "model"


def _quiet_logging() -> None:
    """Our progress at INFO; third-party chatter (ORT quantiser) only when it warns."""
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    logging.getLogger("moodstream").setLevel(logging.INFO)


F = TypeVar("F", bound=Callable[..., Any])


def _dirs(fn: F) -> F:
    """The ``--data-dir`` / ``--work-dir`` pair both sub-commands take."""
    fn = click.option(
        "--work-dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_WORK_DIR,
        show_default=True,
        help="checkpoints, step log, final.pt and result.json (train writes, onnx reads)",
    )(fn)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help="folder with sentiment/ and emotion/ data sets",
    )(fn)


@click.group()
def export() -> None:
    """Build-time model work: fine-tune on ../shared/data and export ONNX (int8 + fp16)."""


# The TrainConfig fields ``export train`` takes as options, top to bottom as --help lists them,
# with their help; the type and the default of each come from TrainConfig itself.
_TRAIN_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("epochs", "passes over the training rows (fractions allowed)"),
    ("batch_size", None),
    ("sst2_fraction", "share of SST-2 training rows used (time budget)"),
    ("lr_encoder", None),
    ("lr_heads", None),
    ("seed", None),
    (
        "distill_weight",
        "weight of 1 - cosine(embedding, base encoder embedding): keeps item search topical",
    ),
    ("val_fraction", "validation share carved from each training file"),
    ("max_steps", "stop after this many steps (0 = full run; for throughput probes)"),
    ("sst2_rows", "class-balanced sample of this many SST-2 phrases (0 = use --sst2-fraction)"),
    ("min_phrase_words", None),
    ("sst5_repeat", "SST-5 training sentences per epoch (times)"),
    ("lr_schedule", None),
    ("warmup_fraction", None),
    (
        "eval_every",
        "score the sentence-level select halves every N steps and keep the best (0 = off)",
    ),
    ("patience", "stop after N evaluations without improvement (0 = never)"),
    ("emotion_fraction", "share of GoEmotions training rows used"),
    ("init_from", "warm start from a shipped model folder (its fp16 ONNX) or a state dict .pt"),
    ("checkpoint_every", None),
    ("threads", None),
)
_CHOICES: dict[str, click.Choice] = {"lr_schedule": click.Choice(["linear", "cosine"])}


def _config_option(name: str, help: str | None) -> Callable[[F], F]:
    """``--<name>`` for a TrainConfig field: its type and default (shown unless empty)."""
    default = getattr(TrainConfig, name)
    shown: dict[str, Any] = {} if default == "" else {"show_default": True}
    flag = "--" + name.replace("_", "-")
    return click.option(
        flag, type=_CHOICES.get(name, type(default)), default=default, help=help, **shown
    )


# The options of ``export train``: the TrainConfig fields, then two of the command's own.
_TRAIN_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    *(_config_option(name, help) for name, help in _TRAIN_FIELDS),
    click.option("--resume", is_flag=True, help="continue from work-dir/checkpoint.pt"),
    click.option(
        "--progress-log",
        type=click.Path(path_type=Path),
        default=None,
        help="write the progress bar here (default: work-dir/progress.log)",
    ),
)


def _train_options(fn: F) -> F:
    """Apply ``_TRAIN_OPTIONS`` as if stacked as decorators in that order."""
    for option in reversed(_TRAIN_OPTIONS):
        fn = option(fn)
    return fn


@export.command()
@_dirs
@_train_options
def train(
    data_dir: Path, work_dir: Path, progress_log: Path | None, resume: bool, **options: Any
) -> None:
    """Fine-tune MiniLM with sentiment + emotion heads; tune thresholds; score held-out data."""
    from tqdm import tqdm

    from export.train import train as run_training

    _quiet_logging()
    cfg = TrainConfig(**options)
    work_dir.mkdir(parents=True, exist_ok=True)
    with (progress_log or work_dir / "progress.log").open("a") as fh:
        bar: tqdm[Any] | None = None

        def progress(step: int, total: int, loss: float) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, initial=step - 1, file=fh, mininterval=20, unit="step")
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        result = run_training(data_dir, work_dir, cfg, resume=resume, progress=progress)
        if bar is not None:
            bar.close()
    summary = {
        k: {m: v for m, v in d.items() if not isinstance(v, dict)}
        for k, d in result["metrics"].items()
    }
    click.echo(json.dumps(summary, indent=2))
    click.echo(f"wrote {work_dir / 'final.pt'} and {work_dir / 'result.json'}")


@export.command()
@_dirs
@click.option(
    "--out-dir",
    type=click.Path(path_type=Path),
    default=DEFAULT_MODEL_DIR,
    show_default=True,
    help="the shipped artifact folder",
)
@click.option(
    "--provisional",
    is_flag=True,
    help="export the base encoder with random heads (integration stand-in)",
)
@click.option(
    "--atol",
    type=float,
    default=1e-4,
    show_default=True,
    help="largest allowed |onnx - torch| per output",
)
def onnx(data_dir: Path, work_dir: Path, out_dir: Path, provisional: bool, atol: float) -> None:
    """Export one ONNX graph, check parity (fatal), optimise, quantise int8, convert fp16, card."""
    from export.artifact import build_artifact

    _quiet_logging()
    card = build_artifact(data_dir, work_dir, out_dir, provisional=provisional, atol=atol)
    click.echo(
        json.dumps(
            {
                "version": card["version"],
                "files": card["files"],
                "int8_vs_fp32": card["metrics"].get("int8_vs_fp32"),
            },
            indent=2,
        )
    )
