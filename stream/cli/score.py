"""``moodstream score FILE|-``: sentiment and emotions of one text per line, in batches.

One output line per input line, in input order, so the result pastes next to the input. An empty
line scores neutral with low confidence; a line longer than the model's window is cut and flagged.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, Any

import click

from stream.cli.options import pop_settings, settings_options
from stream.core.labels import ekman, emotion_labels, sentiment_labels, top_emotions
from stream.ports import EKMAN, EMOTIONS, SENTIMENTS, Scores

TOP_EMOTIONS = 3


def _lines(stream: IO[str]) -> Iterator[str]:
    for line in stream:
        yield line.rstrip("\r\n")


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(lines)
    while chunk := list(islice(it, size)):
        yield chunk


def _open(source: str) -> IO[str]:
    if source == "-":
        return click.get_text_stream("stdin", encoding="utf-8", errors="replace")
    try:
        return open(source, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise click.ClickException(f"cannot read {source}: {exc.strerror}") from exc


def _round(x: float) -> float:
    return round(float(x), 4)


def format_plain(scores: Scores) -> list[str]:
    """``label<TAB>valence<TAB>emotion=p,emotion=p,emotion=p`` per text."""
    labels = sentiment_labels(scores.sentiment)
    tops = top_emotions(scores.emotions, TOP_EMOTIONS)
    return [
        f"{label}\t{valence:+.3f}\t" + ",".join(f"{name}={p:.2f}" for name, p in top if p > 0)
        for label, valence, top in zip(labels, scores.valence, tops, strict=True)
    ]


def format_json(scores: Scores, thresholds: Any) -> list[str]:
    """One JSON object per text (see ``moodstream score --help``)."""
    labels = sentiment_labels(scores.sentiment)
    above = emotion_labels(scores.emotions, thresholds)
    groups = ekman(scores.emotions)
    out = []
    for i, label in enumerate(labels):
        record = {
            "label": label,
            "valence": _round(scores.valence[i]),
            "sentiment": dict(zip(SENTIMENTS, map(_round, scores.sentiment[i]), strict=True)),
            "emotions": dict(zip(EMOTIONS, map(_round, scores.emotions[i]), strict=True)),
            "emotion_labels": above[i],
            "ekman": dict(zip(EKMAN, map(_round, groups[i]), strict=True)),
            "truncated": bool(scores.truncated[i]),
        }
        out.append(json.dumps(record, ensure_ascii=False))
    return out


@click.command("score")
@click.argument("source", metavar="FILE|-")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="one JSON object per line: label, valence, sentiment, emotions, emotion_labels "
    "(at the card's thresholds), ekman, truncated",
)
@click.option("--no-verify", is_flag=True, help="skip the sha256 check of the model files")
@settings_options
def score(source: str, as_json: bool, no_verify: bool, **kwargs: Any) -> None:
    """Score FILE (or stdin for -), one text per line, in batches of --batch-size.

    Plain output: label, valence in [-1, 1] and the three most probable emotions, tab separated.
    """
    settings = pop_settings(kwargs)
    level = logging.getLevelName(settings.log_level.upper())
    if not isinstance(level, int):
        raise click.ClickException(f"unknown log level {settings.log_level!r}")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    stream = _open(source)
    # Imported here so `moodstream --help` never loads ONNX Runtime.
    from stream.adapters.sentiment import OnnxSentimentModel

    try:
        model = OnnxSentimentModel.from_settings(settings, verify=not no_verify)
        thresholds = model.card.thresholds
        for chunk in _chunks(_lines(stream), settings.batch_size):
            scores = model.predict(chunk)
            rows = format_json(scores, thresholds) if as_json else format_plain(scores)
            click.echo("\n".join(rows))
    finally:
        if source != "-":
            stream.close()
