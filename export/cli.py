"""``moodstream export``: train the heads, then export the shipped ONNX artifact."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

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


# The options of ``export train`` (top to bottom as --help lists them); kept out of the
# command so its function stays short. All but the last two are TrainConfig fields.
_TRAIN_OPTIONS: tuple[Callable[[Any], Any], ...] = (
    click.option(
        "--epochs",
        type=float,
        default=1.25,
        show_default=True,
        help="passes over the training rows (fractions allowed)",
    ),
    click.option("--batch-size", type=int, default=32, show_default=True),
    click.option(
        "--sst2-fraction",
        type=float,
        default=1.0,
        show_default=True,
        help="share of SST-2 training rows used (time budget)",
    ),
    click.option("--lr-encoder", type=float, default=5e-5, show_default=True),
    click.option("--lr-heads", type=float, default=1e-3, show_default=True),
    click.option("--seed", type=int, default=13, show_default=True),
    click.option(
        "--distill-weight",
        type=float,
        default=2.0,
        show_default=True,
        help="weight of 1 - cosine(embedding, base encoder embedding): keeps item search topical",
    ),
    click.option(
        "--val-fraction",
        type=float,
        default=0.05,
        show_default=True,
        help="validation share carved from each training file",
    ),
    click.option(
        "--max-steps",
        type=int,
        default=0,
        show_default=True,
        help="stop after this many steps (0 = full run; for throughput probes)",
    ),
    click.option(
        "--sst2-rows",
        type=int,
        default=0,
        show_default=True,
        help="class-balanced sample of this many SST-2 phrases (0 = use --sst2-fraction)",
    ),
    click.option("--min-phrase-words", type=int, default=1, show_default=True),
    click.option(
        "--sst5-repeat",
        type=int,
        default=1,
        show_default=True,
        help="SST-5 training sentences per epoch (times)",
    ),
    click.option(
        "--lr-schedule",
        type=click.Choice(["linear", "cosine"]),
        default="linear",
        show_default=True,
    ),
    click.option("--warmup-fraction", type=float, default=0.06, show_default=True),
    click.option(
        "--eval-every",
        type=int,
        default=0,
        show_default=True,
        help="score the sentence-level select halves every N steps and keep the best (0 = off)",
    ),
    click.option(
        "--patience",
        type=int,
        default=0,
        show_default=True,
        help="stop after N evaluations without improvement (0 = never)",
    ),
    click.option(
        "--emotion-fraction",
        type=float,
        default=1.0,
        show_default=True,
        help="share of GoEmotions training rows used",
    ),
    click.option(
        "--init-from",
        default="",
        help="warm start from a shipped model folder (its fp16 ONNX) or a state dict .pt",
    ),
    click.option("--checkpoint-every", type=int, default=200, show_default=True),
    click.option("--threads", type=int, default=2, show_default=True),
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

    from export.train import TrainConfig
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
