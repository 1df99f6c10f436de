"""Readers for the item texts the index is built from: a catalog, or past reviews.

Both read JSON lines (optionally gzipped). A file that cannot be opened raises ``DatasetError``;
a bad row is skipped and reported with its line number, so one broken line never stops a build.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

from stream.errors import DatasetError
from stream.ports import SentimentModel


@dataclass(frozen=True)
class RowProblem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True)
class CatalogItem:
    item_id: str
    title: str
    text: str
    category: str | None = None
    tags: tuple[str, ...] = ()

    def document(self) -> str:
        """The text embedded for this item: title and description."""
        parts = [p.strip() for p in (self.title, self.text) if p and p.strip()]
        return ". ".join(parts)


@dataclass(frozen=True)
class Catalog:
    items: tuple[CatalogItem, ...]
    problems: tuple[RowProblem, ...] = ()

    @property
    def skipped(self) -> int:
        return len(self.problems)


@dataclass(frozen=True)
class ReviewText:
    item_id: str
    text: str
    ts: int  # epoch ms


@dataclass(frozen=True)
class ReviewTexts:
    rows: tuple[ReviewText, ...]
    problems: tuple[RowProblem, ...] = field(default=())

    @property
    def skipped(self) -> int:
        return len(self.problems)


def _open(path: Path) -> BinaryIO:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return path.open("rb")
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from exc


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    """(line number, object) per non-blank line, or (line number, problem) for a bad line."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{path} is a directory, expected a JSON-lines file")
    with _open(path) as fh:
        try:
            for number, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    value = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    yield number, RowProblem(number, "not UTF-8")
                    continue
                except json.JSONDecodeError as exc:
                    yield number, RowProblem(number, f"invalid JSON ({exc.msg})")
                    continue
                except (ValueError, RecursionError):
                    yield number, RowProblem(number, "invalid JSON")
                    continue
                if not isinstance(value, dict):
                    yield number, RowProblem(number, "not a JSON object")
                    continue
                yield number, value
        except (OSError, EOFError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from exc


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def _item_id(row: Mapping[str, Any]) -> str | None:
    value = row.get("item_id")
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def parse_catalog_row(row: Mapping[str, Any]) -> CatalogItem | str:
    """A catalog item, or the reason the row is unusable."""
    item_id = _item_id(row)
    if item_id is None:
        return "missing or empty item_id"
    title, text = _text(row, "title"), _text(row, "text")
    if title is None or text is None:
        return "title and text must be strings"
    if not (title.strip() or text.strip()):
        return "no title or text to embed"
    category = row.get("category")
    if category is not None and not isinstance(category, str):
        return "category must be a string"
    tags = row.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return "tags must be a list of strings"
    return CatalogItem(item_id, title, text, category, tuple(tags))


def read_catalog(path: str | Path) -> Catalog:
    """Items in file order; later rows repeating an item_id are skipped as duplicates."""
    items: list[CatalogItem] = []
    problems: list[RowProblem] = []
    known: set[str] = set()
    for number, row in iter_json_lines(path):
        if isinstance(row, RowProblem):
            problems.append(row)
            continue
        parsed = parse_catalog_row(row)
        if isinstance(parsed, str):
            problems.append(RowProblem(number, parsed))
        elif parsed.item_id in known:
            problems.append(RowProblem(number, f"duplicate item_id {parsed.item_id!r}"))
        else:
            known.add(parsed.item_id)
            items.append(parsed)
    return Catalog(tuple(items), tuple(problems))


def read_review_texts(path: str | Path) -> ReviewTexts:
    """Reviews as JSON lines with ``item_id``, ``text`` and ``ts`` (epoch ms)."""
    rows: list[ReviewText] = []
    problems: list[RowProblem] = []
    for number, row in iter_json_lines(path):
        if isinstance(row, RowProblem):
            problems.append(row)
            continue
        item_id, text, ts = _item_id(row), row.get("text"), row.get("ts")
        if item_id is None:
            problems.append(RowProblem(number, "missing or empty item_id"))
        elif not isinstance(text, str) or not text.strip():
            problems.append(RowProblem(number, "missing or empty text"))
        elif not isinstance(ts, int) or isinstance(ts, bool):
            problems.append(RowProblem(number, "ts must be an integer (epoch ms)"))
        else:
            rows.append(ReviewText(item_id, text, ts))
    return ReviewTexts(tuple(rows), tuple(problems))


def documents_from_reviews(
    reviews: Iterable[ReviewText], until_ms: int, per_item: int = 8
) -> dict[str, list[str]]:
    """Per item, the texts of its ``per_item`` most recent reviews strictly before ``until_ms``.

    Only past reviews: an index for a backtest split at ``until_ms`` must not see the future.
    """
    by_item: dict[str, list[ReviewText]] = defaultdict(list)
    for review in reviews:
        if review.ts < until_ms and review.text.strip():
            by_item[review.item_id].append(review)
    docs: dict[str, list[str]] = {}
    for item_id in sorted(by_item):
        recent = sorted(by_item[item_id], key=lambda r: r.ts, reverse=True)[: max(per_item, 1)]
        docs[item_id] = [r.text for r in recent]
    return docs


def embed_documents(
    docs: Mapping[str, Sequence[str]],
    model: SentimentModel,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[str], npt.NDArray[np.float32]]:
    """One unit vector per item: the normalised mean embedding of its texts.

    Texts are batched in length order so each batch pads little (DESIGN.md: padding dominates).
    """
    ids = [item_id for item_id, texts in docs.items() if texts]
    pairs = [(row, text) for row, item_id in enumerate(ids) for text in docs[item_id]]
    pairs.sort(key=lambda p: len(p[1]))
    sums: npt.NDArray[np.float64] | None = None
    step = max(int(batch_size), 1)
    for start in range(0, len(pairs), step):
        chunk = pairs[start : start + step]
        emb = np.asarray(model.predict([text for _, text in chunk]).embedding, dtype=np.float64)
        if sums is None:
            sums = np.zeros((len(ids), emb.shape[1]), dtype=np.float64)
        np.add.at(sums, [row for row, _ in chunk], emb)
        if progress is not None:
            progress(min(start + step, len(pairs)), len(pairs))
    if sums is None:
        return [], np.zeros((0, 0), dtype=np.float32)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    keep = norms[:, 0] > 1e-12
    vectors = (sums[keep] / norms[keep]).astype(np.float32)
    return [i for i, k in zip(ids, keep, strict=True) if k], vectors
