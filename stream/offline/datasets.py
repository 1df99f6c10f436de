"""Amazon review data sets (McAuley et al.) as review events, in event-time order.

Reads the forms the data is published in, without unpacking anything to disk:

- JSON lines, plain or gzipped (``.json``, ``.jsonl``, ``.json.gz``, ``.jsonl.gz``) with the 2014
  field names (reviewerID, asin, overall, reviewText, summary, unixReviewTime, reviewTime, helpful),
  the 2018 ones (the same plus vote, style, verified, image) or the 2023 ones (user_id, asin,
  rating, title, text, timestamp in ms). Lines written as Python literals (the 2014 "loose JSON"
  files) and a file holding one JSON array are read too.
- CSV exports (``.csv``, ``.csv.gz``) with the same column names, and a ``.zip`` holding one such
  CSV or JSON file (read through ``zipfile``).

Each row becomes a ``stream.contract.records.Review``:

- ``event_id`` = ``f"{reviewerID}:{asin}:{unixReviewTime}"``: deterministic, so a replay of the same
  file produces the same ids and the worker's de-duplication recognises them;
- ``text`` = the summary, then the review body (``"Great strings. They stay in tune..."``; ``". "``
  between them unless the summary already ends a sentence). The summary goes first because it is
  the densest statement of the reviewer's sentiment and the model reads only its first 128 tokens;
  a row with only one of the two keeps that one;
- ``rating`` = ``int(overall)`` (None when absent or out of 1..5), ``ts`` = unixReviewTime * 1000.

A row that cannot become a valid event (no user, item, text or time; a duplicate event id; a line
that is not JSON) is skipped and counted by reason in the ``LoadReport``; it never stops the load.
A file that cannot be read at all raises ``DatasetError``. Texts longer than the topic contract's
8 KiB are cut at a character boundary (counted), so every event loaded passes the schema.
"""

from __future__ import annotations

import ast
import csv
import gzip
import hashlib
import io
import json
import math
import re
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from stream.contract.records import Review
from stream.errors import DatasetError

MAX_TEXT_BYTES = 8192  # schemas/reviews.v1.json (and Settings.max_text_bytes)
MAX_ID_CHARS = 128
_CONTROL = re.compile(r"[\x00-\x1f]")
_SENTENCE_END = (".", "!", "?", "…")

# our name -> accepted field names, first present wins (2014/2018 first, then 2023)
FIELDS: dict[str, tuple[str, ...]] = {
    "user": ("reviewerID", "user_id"),
    "item": ("asin", "parent_asin"),
    "rating": ("overall", "rating"),
    "body": ("reviewText", "text"),
    "summary": ("summary", "title"),
    "time_s": ("unixReviewTime",),
    "time_ms": ("timestamp",),
    "date": ("reviewTime",),
}


@dataclass
class LoadReport:
    """What a load did: rows read, events kept, rows skipped by reason, rows altered but kept."""

    path: str
    format: str
    sha256: str = ""
    rows: int = 0
    loaded: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)  # kept rows: summary_only, truncated...
    first_line: dict[str, int] = field(default_factory=dict)  # reason -> first row/line number

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        self.first_line.setdefault(reason, line)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "sha256": self.sha256,
            "rows": self.rows,
            "loaded": self.loaded,
            "skipped": dict(sorted(self.skipped.items())),
            "notes": dict(sorted(self.notes.items())),
        }

    def summary(self) -> str:
        """One line for a terminal: ``10261 rows, 10261 events; skipped: ...``."""
        parts = [f"{self.rows} rows, {self.loaded} events"]
        if self.skipped:
            parts.append(
                "skipped " + ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items()))
            )
        if self.notes:
            parts.append(
                "kept with " + ", ".join(f"{k}={v}" for k, v in sorted(self.notes.items()))
            )
        return "; ".join(parts)


@dataclass(frozen=True)
class Dataset:
    events: list[Review]  # sorted by ts (stable: file order within equal times)
    report: LoadReport


def load_reviews(
    path: str | Path, *, limit: int | None = None, max_text_bytes: int = MAX_TEXT_BYTES
) -> Dataset:
    """All review events of ``path`` in event-time order; ``limit`` keeps the earliest N."""
    path = Path(path)
    fmt = detect_format(path)
    report = LoadReport(str(path), fmt, sha256=file_sha256(path))
    events: list[Review] = []
    ids: set[str] = set()
    for line, row in _rows(path, fmt, report):
        report.rows += 1
        event = to_event(row, line, report, max_text_bytes)
        if event is None:
            continue
        if event.event_id in ids:
            report.skip("duplicate", line)
            continue
        ids.add(event.event_id)
        events.append(event)
    events.sort(key=lambda e: e.ts)
    if limit is not None and 0 <= limit < len(events):
        report.notes["beyond_limit"] = len(events) - limit
        events = events[:limit]
    report.loaded = len(events)
    return Dataset(events, report)


def detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in (
        (".json.gz", "jsonl.gz"),
        (".jsonl.gz", "jsonl.gz"),
        (".csv.gz", "csv.gz"),
        (".json", "jsonl"),
        (".jsonl", "jsonl"),
        (".csv", "csv"),
        (".zip", "zip"),
    ):
        if name.endswith(suffix):
            return fmt
    raise DatasetError(
        f"{path}: unknown data set format (expected .json, .jsonl, .json.gz, .csv, .csv.gz or .zip)"
    )


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    return h.hexdigest()


# ----------------------------------------------------------------------------- reading


def _rows(path: Path, fmt: str, report: LoadReport) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """(line or row number, raw row) of every row; unreadable input raises DatasetError."""
    try:
        if fmt == "zip":
            yield from _zip_rows(path, report)
        elif fmt in ("jsonl", "jsonl.gz"):
            with _open_binary(path, gz=fmt.endswith(".gz")) as f:
                yield from _json_rows(f, report)
        else:
            with _open_binary(path, gz=fmt.endswith(".gz")) as f:
                yield from _csv_rows(f)
    except DatasetError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile) as exc:  # gzip.BadGzipFile is an OSError
        raise DatasetError(f"cannot read {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: broken CSV ({exc})") from None


def _open_binary(path: Path, *, gz: bool) -> IO[bytes]:
    if gz:
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _zip_rows(path: Path, report: LoadReport) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with zipfile.ZipFile(path) as archive:
        members = [
            m
            for m in archive.infolist()
            if not m.is_dir()
            and not m.filename.startswith("__MACOSX/")
            and m.filename.lower().endswith((".csv", ".json", ".jsonl"))
        ]
        if len(members) != 1:
            names = ", ".join(m.filename for m in members) or "none"
            raise DatasetError(f"{path}: expected one .csv or .json file inside, found {names}")
        member = members[0]
        report.format = "zip/" + ("csv" if member.filename.lower().endswith(".csv") else "jsonl")
        with archive.open(member) as f:
            if report.format == "zip/csv":
                yield from _csv_rows(f)
            else:
                yield from _json_rows(f, report)


def _csv_rows(f: IO[bytes]) -> Iterator[tuple[int, Mapping[str, Any]]]:
    text = io.TextIOWrapper(f, encoding="utf-8-sig", newline="")
    csv.field_size_limit(1 << 26)
    reader = csv.DictReader(text)
    header = reader.fieldnames or []
    missing = [name for name in ("user", "item") if not any(k in header for k in FIELDS[name])]
    if missing:
        raise DatasetError(
            f"CSV header has no {' or '.join(FIELDS[missing[0]])} column: not Amazon review data"
        )
    for row in reader:
        yield reader.line_num, row  # the physical line the row ends on


def _json_rows(f: IO[bytes], report: LoadReport) -> Iterator[tuple[int, Mapping[str, Any]]]:
    head = f.peek(64)[:64] if hasattr(f, "peek") else b""
    if head.lstrip().startswith(b"["):
        yield from _json_array(f, report)
        return
    for number, raw in enumerate(f, start=1):
        if not raw.strip():
            continue
        row = _parse_line(raw)
        if row is None:
            report.rows += 1
            report.skip("malformed_json", number)
            continue
        yield number, row


def _json_array(f: IO[bytes], report: LoadReport) -> Iterator[tuple[int, Mapping[str, Any]]]:
    try:
        values = json.loads(f.read().decode("utf-8"))
    except ValueError as exc:
        raise DatasetError(f"not a JSON array of reviews: {exc}") from None
    for number, value in enumerate(values, start=1):
        if isinstance(value, Mapping):
            yield number, value
        else:
            report.rows += 1
            report.skip("malformed_json", number)


def _parse_line(raw: bytes) -> Mapping[str, Any] | None:
    """A JSON object, or a Python dict literal (the 2014 release's loose-JSON files)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text.strip())  # literals only: never evaluates code
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, Mapping) else None


# ----------------------------------------------------------------------------- rows -> events


def _pick(row: Mapping[str, Any], name: str) -> Any:
    for key in FIELDS[name]:
        value = row.get(key)
        if value is not None and value != "":
            return value
    return None


def _clean_id(value: Any) -> tuple[str | None, str]:
    """(id, "") or (None, why): empty, or unusable as a key (control characters, > 128 chars)."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None, "missing"
    if len(text) > MAX_ID_CHARS or _CONTROL.search(text):
        return None, "bad"
    return text, ""


def _time_ms(row: Mapping[str, Any]) -> int | None:
    """Event time in epoch ms: unixReviewTime (s), else timestamp (ms), else reviewTime."""
    for name, scale in (("time_s", 1000), ("time_ms", 1)):
        value = _pick(row, name)
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(number) or number < 0:
            return None
        return int(number) * scale
    date = _pick(row, "date")
    if isinstance(date, str):
        try:
            parsed = datetime.strptime(date.strip(), "%m %d, %Y").replace(tzinfo=UTC)
        except ValueError:
            return None
        return int(parsed.timestamp()) * 1000
    return None


def _rating(value: Any) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or not 1 <= number <= 5:
        return None
    return int(number)


def compose_text(summary: str, body: str) -> str:
    """Summary first, then the body; either alone when the other is empty."""
    summary, body = summary.strip(), body.strip()
    if not summary or not body:
        return summary or body
    sep = " " if summary.endswith(_SENTENCE_END) else ". "
    return summary + sep + body


def _cut(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", errors="ignore")


def to_event(
    row: Mapping[str, Any], line: int, report: LoadReport, max_text_bytes: int = MAX_TEXT_BYTES
) -> Review | None:
    """One row as a review event, or None (reason counted in ``report``)."""
    user, why = _clean_id(_pick(row, "user"))
    if user is None:
        report.skip(f"{why}_user", line)
        return None
    item, why = _clean_id(_pick(row, "item"))
    if item is None:
        report.skip(f"{why}_item", line)
        return None
    ts = _time_ms(row)
    if ts is None or ts > 32503680000000:
        report.skip("bad_time", line)
        return None
    summary, body = _pick(row, "summary"), _pick(row, "body")
    text = compose_text(str(summary or ""), str(body or ""))
    if not text:
        report.skip("missing_text", line)
        return None
    if not body or not str(body).strip():
        report.notes["summary_only"] += 1
    elif not summary or not str(summary).strip():
        report.notes["body_only"] += 1
    cut = _cut(text, max_text_bytes)
    if cut != text:
        report.notes["text_truncated"] += 1
    raw_rating = _pick(row, "rating")
    rating = _rating(raw_rating)
    if rating is None:
        report.notes["no_rating"] += 1
    event_id = f"{user}:{item}:{ts // 1000 if ts % 1000 == 0 else ts}"
    if len(event_id) > MAX_ID_CHARS:
        event_id = "h:" + hashlib.blake2b(event_id.encode(), digest_size=16).hexdigest()
    return Review(event_id=event_id, user_id=user, item_id=item, text=cut, ts=ts, rating=rating)
