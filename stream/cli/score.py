"""``moodstream score FILE|-``: sentiment and emotions of one text per line, in batches.

One output line per input line, in input order, so the result pastes next to the input. An empty
line scores neutral with low confidence; a line longer than the model's window is cut, and bytes
that are not UTF-8 are replaced: both are flagged (``--json``) and counted on stderr at the end,
so nobody mistakes the score of a cut or repaired text for the score of the text they sent.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import IO, Any

import click

from stream.cli.options import pop_settings, settings_options
from stream.core.labels import ekman, emotion_labels, sentiment_labels, top_emotions
from stream.errors import ConfigError
from stream.ports import EKMAN, EMOTIONS, SENTIMENTS, Scores

TOP_EMOTIONS = 3


@dataclass
class _Notes:
    """Line numbers (1-based) whose text was repaired or cut before scoring."""

    replaced: list[int] = field(default_factory=list)
    truncated: list[int] = field(default_factory=list)

    def lines(self, max_length: int) -> list[str]:
        out = []
        if self.replaced:
            out.append(
                f"score: {len(self.replaced)} line(s) held bytes that are not UTF-8, replaced by "
                f"U+FFFD before scoring: line(s) {_numbers(self.replaced)}"
            )
        if self.truncated:
            out.append(
                f"score: {len(self.truncated)} text(s) longer than the model's {max_length}-token "
                f"window were cut and scored on their start: line(s) {_numbers(self.truncated)}"
            )
        return out


def _numbers(numbers: list[int], shown: int = 10) -> str:
    text = ", ".join(map(str, numbers[:shown]))
    return text + (f" and {len(numbers) - shown} more" if len(numbers) > shown else "")


def _lines(stream: IO[bytes], notes: _Notes) -> Iterator[str]:
    for number, raw in enumerate(stream, 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", errors="replace")
            notes.replaced.append(number)
        yield text.rstrip("\r\n")


def _chunks(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    it = iter(lines)
    while chunk := list(islice(it, size)):
        yield chunk


def _open(source: str) -> IO[bytes]:
    if source == "-":
        return click.get_binary_stream("stdin")
    try:
        return open(source, "rb")
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from None


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


def format_json(
    scores: Scores, thresholds: Any, replaced: Sequence[bool] | None = None
) -> list[str]:
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
            "replaced_bytes": bool(replaced[i]) if replaced is not None else False,
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
    "(at the card's thresholds), ekman, truncated, replaced_bytes (not UTF-8)",
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
        raise ConfigError(f"unknown log level {settings.log_level!r}")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    stream = _open(source)
    # Imported here so `moodstream --help` never loads ONNX Runtime.
    from stream.adapters.sentiment import OnnxSentimentModel

    try:
        model = OnnxSentimentModel.from_settings(settings, verify=not no_verify)
        thresholds = model.card.thresholds
        notes = _Notes()
        first = 1
        for chunk in _chunks(_lines(stream, notes), settings.batch_size):
            scores = model.predict(chunk)
            numbers = range(first, first + len(chunk))
            notes.truncated += [n for n, cut in zip(numbers, scores.truncated, strict=True) if cut]
            replaced = [n in notes.replaced for n in numbers]
            first += len(chunk)
            rows = format_json(scores, thresholds, replaced) if as_json else format_plain(scores)
            click.echo("\n".join(rows))
    finally:
        if source != "-":
            stream.close()
    for line in notes.lines(model.card.max_length):
        click.echo(line, err=True)
