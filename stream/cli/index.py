"""``moodstream index build`` and ``moodstream items``: make and inspect the FAISS item index.

Items are embedded with the shipped model's ``embedding`` output: a catalog item as its title and
description, a review-built item as the mean of the embeddings of its most recent reviews before
``--until`` (past data only, so a backtest split never sees the future).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import click

from stream.adapters.index import build_index, read_ids, read_manifest
from stream.adapters.model_card import model_fingerprint
from stream.cli.options import (
    count_option,
    path_option,
    pop_settings,
    seed_option,
    settings_options,
    share_option,
)
from stream.errors import ConfigError, DatasetError, ModelError
from stream.offline.catalog import (
    ReviewText,
    documents_from_reviews,
    embed_documents,
    iter_json_lines,
    read_catalog,
    read_review_texts,
)
from stream.offline.times import parse_when
from stream.ports import SentimentModel
from stream.settings import Settings

SHOW_PROBLEMS = 5
_AMAZON_SUFFIXES = (".csv", ".csv.gz", ".zip")


def load_model(settings: Settings) -> SentimentModel:
    """The serving model (tests replace this with a fake)."""
    try:
        from stream.adapters.sentiment import OnnxSentimentModel
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ModelError(f"cannot load the model adapter: {exc}") from exc
    return OnnxSentimentModel.from_settings(settings)


def _detect_reviews_format(path: Path) -> str:
    if path.name.lower().endswith(_AMAZON_SUFFIXES):
        return "amazon"
    for _, row in iter_json_lines(path):
        if isinstance(row, dict):
            return "jsonl" if "item_id" in row else "amazon"
    return "jsonl"


def load_review_texts(path: Path, fmt: str) -> tuple[list[ReviewText], list[str]]:
    """Reviews (item_id, text, ts) and readable notes on skipped rows.

    ``fmt``: ``jsonl`` (item_id, text, ts in epoch ms), ``amazon`` (``stream.offline.datasets``: the
    McAuley CSV/JSON/zip forms), ``auto``, or ``module:function`` — a loader taking the path
    and returning objects with ``item_id``, ``text`` and ``ts`` (epoch ms).
    """
    if fmt == "auto":
        fmt = _detect_reviews_format(path)
    if fmt == "jsonl":
        read = read_review_texts(path)
        return list(read.rows), [str(p) for p in read.problems]
    if fmt == "amazon":
        from stream.offline.datasets import load_reviews

        dataset = load_reviews(path)
        rows = [ReviewText(e.item_id, e.text, e.ts) for e in dataset.events]
        notes = [dataset.report.summary()] if dataset.report.skipped else []
        return rows, notes
    module_name, _, attr = fmt.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--reviews-format must be auto, jsonl, amazon or module:function: {fmt}")
    try:
        loader = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import review loader {fmt}: {exc}") from exc
    loaded: Iterable[Any] = loader(path)
    return [ReviewText(str(r.item_id), str(r.text), int(r.ts)) for r in loaded], []


def _report_problems(problems: Sequence[str], what: str) -> None:
    if not problems:
        return
    click.echo(f"skipped {len(problems)} {what}:", err=True)
    for line in problems[:SHOW_PROBLEMS]:
        click.echo(f"  {line}", err=True)
    if len(problems) > SHOW_PROBLEMS:
        click.echo(f"  ... and {len(problems) - SHOW_PROBLEMS} more", err=True)


class _Progress:
    """A line on stderr at every tenth of the texts embedded."""

    def __init__(self) -> None:
        self.shown = -1

    def __call__(self, done: int, total: int) -> None:
        tenth = 10 * done // max(total, 1)
        if tenth > self.shown:
            self.shown = tenth
            click.echo(f"embedded {done}/{total} texts", err=True)


@click.group("index")
def index() -> None:
    """Build and inspect the FAISS item index."""


@index.command("build")
@path_option(
    "--catalog", "catalog JSON lines: item_id, title, text, category?, tags?", dir_okay=False
)
@path_option(
    "--from-reviews",
    "build item texts from reviews instead of a catalog",
    dest="reviews",
    dir_okay=False,
)
@click.option("--until", help="with --from-reviews: only reviews before this (epoch ms or ISO)")
@click.option(
    "--reviews-format",
    default="auto",
    show_default=True,
    help="auto, jsonl, amazon, or module:function returning (item_id, text, ts) rows",
)
@count_option("--reviews-per-item", 8, "most recent reviews embedded per item")
@path_option("--out", "index folder to write [default: --index-dir]", file_okay=False)
@count_option("--exact-max", 50_000, "largest item count indexed exactly; above it HNSW")
@count_option(
    "--ef-search", 64, "first HNSW efSearch tried; doubled until recall@50 reaches the target"
)
@share_option("--recall-target", 0.0, 1.0, 0.95)
@seed_option("seed of the recall sample")
@settings_options
def build(
    catalog: Path | None,
    reviews: Path | None,
    until: str | None,
    reviews_format: str,
    reviews_per_item: int,
    out: Path | None,
    exact_max: int,
    ef_search: int,
    recall_target: float,
    seed: int,
    **kwargs: Any,
) -> None:
    """Embed every item and write an index folder (index.faiss, ids.json, vectors.npy, manifest)."""
    settings = pop_settings(kwargs)
    if (catalog is None) == (reviews is None):
        raise click.UsageError("give exactly one of --catalog FILE or --from-reviews FILE")
    if until is not None and reviews is None:
        raise click.UsageError("--until only applies to --from-reviews")
    target = out or (Path(settings.index_dir) if settings.index_dir else None)
    if target is None:
        raise click.UsageError("give --out DIR (or --index-dir / MOODSTREAM_INDEX_DIR)")

    if catalog is not None:
        read = read_catalog(catalog)
        _report_problems([str(p) for p in read.problems], "catalog rows")
        docs: dict[str, list[str]] = {item.item_id: [item.document()] for item in read.items}
        source = f"catalog:{catalog.name}"
    elif reviews is not None:
        try:
            until_ms = parse_when(until) if until is not None else sys.maxsize
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--until") from None
        rows, notes = load_review_texts(reviews, reviews_format)
        _report_problems(notes, "review rows")
        docs = documents_from_reviews(rows, until_ms, reviews_per_item)
        source = f"reviews:{reviews.name}" + (f" until {until_ms}" if until is not None else "")
    else:  # pragma: no cover - excluded by the usage check above
        raise click.UsageError("give --catalog or --from-reviews")
    if not docs:
        raise DatasetError(f"no usable items in {catalog or reviews}")

    model = load_model(settings)
    fingerprint = model_fingerprint(settings.model_dir, model)
    ids, vectors = embed_documents(docs, model, settings.batch_size, _Progress())
    manifest = build_index(
        ids,
        vectors,
        target,
        fingerprint,
        exact_max=exact_max,
        source=source,
        ef_search=ef_search,
        recall_target=recall_target,
        seed=seed,
    )
    detail = manifest.kind
    if manifest.recall_at_50 is not None:
        detail += f", recall@50 {manifest.recall_at_50:.3f} at efSearch {manifest.ef_search}"
    if manifest.note:
        detail += f"; {manifest.note}"
    click.echo(f"indexed {manifest.count} items ({detail}) in {target}, version {manifest.version}")


@click.command("items")
@click.option("--ids", "show_ids", is_flag=True, help="print the item ids, one per line")
@settings_options
def items(show_ids: bool, **kwargs: Any) -> None:
    """Show the index the worker serves (--index-dir, else the demo index): its manifest, or
    with --ids its item ids."""
    settings = pop_settings(kwargs)
    if not settings.index_dir:
        from stream.devtools.demo_index import with_demo_index

        settings = with_demo_index(settings, load_model(settings))  # as the worker would
    folder = settings.index_dir
    if show_ids:
        ids = read_ids(folder)
        if ids:
            click.echo("\n".join(ids))
        return
    click.echo(json.dumps(read_manifest(folder).to_dict(), indent=2))
