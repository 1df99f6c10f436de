"""``moodstream replay``: a topic range or a data set through the worker's Processor."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import click

from stream.cli.options import path_option, pop_settings, progress_option, settings_options
from stream.errors import ConfigError


def _named_items(records: Iterable[Any]) -> set[str]:
    """The item ids the records' values name (a cheap parse; decoding proper happens later)."""
    found: set[str] = set()
    for record in records:
        try:
            value = json.loads(record.value) if record.value is not None else None
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(value, dict) and isinstance(value.get("item_id"), str):
            found.add(value["item_id"])
    return found


def _refuse_a_foreign_index(records: Iterable[Any], index_ids: Iterable[str], version: str) -> None:
    """Stop before scoring anything when the index knows none of the items: every review and
    click would become an unknown_item dead letter and the replay would say nothing useful."""
    named = _named_items(records)
    if named and named.isdisjoint(index_ids):
        raise ConfigError(
            f"index {version} knows none of the {len(named)} item(s) the records name: give "
            "--index-dir an index of them (moodstream index build --from-reviews FILE)"
        )


@click.command("replay")
@path_option(
    "--dataset",
    "replay an Amazon review file (.json/.json.gz/.csv/.zip) instead of topics",
    dir_okay=False,
)
@click.option(
    "--from",
    "start",
    default=None,
    help="first record: o:<offset> (per partition), epoch ms or ISO time",
)
@click.option(
    "--to",
    "end",
    default=None,
    help="end of the range, exclusive: o:<offset>, epoch ms or ISO time",
)
@path_option("--out", "write the recommendations as JSON lines ('-' = stdout)", dir_okay=False)
@click.option(
    "--to-topic",
    "to_topic",
    default=None,
    metavar="PREFIX",
    help="also re-publish the events to PREFIX + moodstream.<kind>.v1, for a shadow "
    "worker with other settings",
)
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@progress_option
@settings_options
def replay(
    dataset: Path | None,
    start: str | None,
    end: str | None,
    out: Path | None,
    to_topic: str | None,
    as_json: bool,
    progress: bool,
    **kwargs: Any,
) -> None:
    """Fold recorded events in event-time order through the same Processor the worker runs
    (model, index, ranking from --model-dir / --index-dir), and print what happened.

    Without --dataset, reads the input topics (--topic-prefix) from the beginning, up to the end
    offsets at start, keeping --from/--to. Bad values are counted by dead-letter kind. For an
    Amazon review file give --index-dir an index of its items (moodstream index build
    --from-reviews FILE), or its reviews are dead letters of kind unknown_item.
    """
    settings = pop_settings(kwargs)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    from stream.adapters.sentiment import OnnxSentimentModel
    from stream.devtools.demo_index import with_demo_index
    from stream.offline.replay import Replay, dataset_records, parse_bound, publish, read_topics
    from stream.worker.processor import Processor
    from stream.worker.serving import load_index

    if to_topic is not None and to_topic == settings.topic_prefix and dataset is None:
        raise ConfigError("--to-topic must differ from --topic-prefix (it would feed itself)")
    lower, upper = parse_bound(start), parse_bound(end)
    if dataset is not None:
        records, note = dataset_records(
            dataset, lower, upper, max_text_bytes=settings.max_text_bytes
        )
        click.echo(f"{dataset}: {note}", err=True)
    else:
        records = asyncio.run(read_topics(settings, lower, upper))
        click.echo(f"read {len(records)} records from {settings.topic('*')}", err=True)
    model = OnnxSentimentModel.from_settings(settings)
    settings = with_demo_index(settings, model)
    index = load_index(settings, model)
    _refuse_a_foreign_index(records, index.ids(), index.version)
    processor = Processor(settings, model, index)

    sink: IO[str] | None = None
    if out is not None:
        sink = click.open_file(str(out), "w", encoding="utf-8")
    from stream.cli.backtest import RichSteps

    steps = RichSteps(progress and out != Path("-"))

    def write(value: dict[str, Any]) -> None:
        if sink is not None:
            sink.write(json.dumps(value, ensure_ascii=False) + "\n")

    try:
        with steps.progress:
            steps.start("replaying", len(records))
            runner = Replay(processor, settings, on_recommendation=write, on_progress=steps.advance)
            summary = runner.run(records)
    finally:
        if sink is not None:
            sink.close()
    if to_topic is not None:
        sent = asyncio.run(publish(records, settings, to_topic))
        click.echo(f"re-published {sent} records to {to_topic}moodstream.<kind>.v1", err=True)
    echo = click.echo if out != Path("-") else (lambda m: click.echo(m, err=True))
    if as_json:
        echo(json.dumps({"model": model.version, "index": index.version, **summary.to_dict()}))
    else:
        echo(f"model {model.version}, index {index.version} ({len(index.ids())} items)")
        for line in summary.lines():
            echo(line)
