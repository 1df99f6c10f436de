from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from stream.errors import DatasetError
from stream.offline.catalog import (
    ReviewText,
    documents_from_reviews,
    read_catalog,
    read_review_texts,
)


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode() for x in lines) + b"\n")
    return path


def test_good_rows_are_read_and_bad_rows_reported_by_line(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "catalog.jsonl",
        [
            json.dumps(
                {
                    "item_id": "a1",
                    "title": "Nylon strings",
                    "text": "Warm tone.",
                    "tags": ["guitar"],
                }
            ),
            "",
            "{broken",
            json.dumps({"title": "no id"}),
            json.dumps({"item_id": "a2", "title": "", "text": ""}),
            json.dumps({"item_id": "a1", "title": "again", "text": "dup"}),
            b'{"item_id": "a3", "title": "caf\xe9"}',
            json.dumps([1, 2]),
            json.dumps({"item_id": 42, "title": "Capo", "category": "accessories"}),
            json.dumps({"item_id": "a4", "title": "x", "tags": "not-a-list"}),
        ],
    )
    catalog = read_catalog(path)
    assert [i.item_id for i in catalog.items] == ["a1", "42"]
    assert catalog.items[0].document() == "Nylon strings. Warm tone."
    assert catalog.items[0].tags == ("guitar",)
    assert catalog.items[1].category == "accessories" and catalog.items[1].document() == "Capo"
    problems = {p.line: p.reason for p in catalog.problems}
    assert catalog.skipped == 7
    assert problems[3].startswith("invalid JSON")
    assert problems[4] == "missing or empty item_id"
    assert problems[5] == "no title or text to embed"
    assert problems[6] == "duplicate item_id 'a1'"
    assert problems[7] == "not UTF-8"
    assert problems[8] == "not a JSON object"
    assert problems[10] == "tags must be a list of strings"
    assert (
        str(catalog.problems[0])
        == "line 3: invalid JSON (Expecting property name enclosed in double quotes)"
    )


def test_gzip_and_unreadable_files(tmp_path: Path) -> None:
    gz = tmp_path / "c.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write(json.dumps({"item_id": "z", "text": "zither"}) + "\n")
    assert [i.item_id for i in read_catalog(gz).items] == ["z"]
    with pytest.raises(DatasetError, match="cannot read"):
        read_catalog(tmp_path / "missing.jsonl")
    with pytest.raises(DatasetError, match="directory"):
        read_catalog(tmp_path)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot read"):
        read_catalog(tmp_path / "bad.gz")


def test_review_texts(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "reviews.jsonl",
        [
            json.dumps({"item_id": "a", "text": "great", "ts": 1000}),
            json.dumps({"item_id": "a", "text": " ", "ts": 1000}),
            json.dumps({"item_id": "a", "text": "great", "ts": "yesterday"}),
            json.dumps({"text": "orphan", "ts": 5}),
        ],
    )
    read = read_review_texts(path)
    assert read.rows == (ReviewText("a", "great", 1000),)
    assert [(p.line, p.reason) for p in read.problems] == [
        (2, "missing or empty text"),
        (3, "ts must be an integer (epoch ms)"),
        (4, "missing or empty item_id"),
    ]


def test_documents_use_only_recent_past_reviews() -> None:
    reviews = [ReviewText("a", f"a{t}", t) for t in (1, 5, 3, 9, 7)] + [
        ReviewText("b", "future only", 100),
        ReviewText("c", "   ", 1),
    ]
    docs = documents_from_reviews(reviews, until_ms=9, per_item=2)
    assert docs == {"a": ["a7", "a5"]}  # ts 9 is not before the cut; b is all future
    assert documents_from_reviews(reviews, until_ms=10**6, per_item=10)["b"] == ["future only"]
