"""Amazon review loaders: every published form, bad rows counted by reason, unreadable files."""

from __future__ import annotations

import csv
import gzip
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from stream.contract.decoding import validate_value
from stream.errors import DatasetError
from stream.offline.datasets import MAX_TEXT_BYTES, compose_text, load_reviews

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
AMAZON = (
    DATA / "reviews" / "amazon_musical_instruments_5core" / "Musical_instruments_reviews.csv.zip"
)
CSV_FIELDS = [
    "reviewerID",
    "asin",
    "reviewerName",
    "helpful",
    "reviewText",
    "overall",
    "summary",
    "unixReviewTime",
    "reviewTime",
]


def row_2014(
    user: str,
    item: str,
    t: int,
    text: str = "Works well",
    summary: str = "Good",
    overall: Any = 5.0,
) -> dict[str, Any]:
    return {
        "reviewerID": user,
        "asin": item,
        "reviewerName": "N",
        "helpful": [0, 0],
        "reviewText": text,
        "overall": overall,
        "summary": summary,
        "unixReviewTime": t,
        "reviewTime": "01 01, 2014",
    }


def row_2018(user: str, item: str, t: int, text: str = "Solid") -> dict[str, Any]:
    return {
        "overall": 4.0,
        "vote": "1,234",
        "verified": True,
        "reviewTime": "02 28, 2014",
        "reviewerID": user,
        "asin": item,
        "style": {"Size:": " Large"},
        "reviewerName": "M",
        "reviewText": text,
        "summary": "Fine",
        "unixReviewTime": t,
        "image": ["https://example.invalid/a.jpg"],
    }


def write_lines(path: Path, rows: list[Any], *, gz: bool = False) -> Path:
    body = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(body) if gz else body)
    return path


def csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (str(v) if k == "helpful" else v) for k, v in r.items()})
    return buf.getvalue()


def test_json_lines_2014_become_review_events_sorted_by_time(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "r.json",
        [
            row_2014("u2", "i2", 200, text="Later one"),
            row_2014("u1", "i1", 100, text="Bright tone.", summary="Great strings"),
            row_2014("u3", "i1", 200, text="Same time, file order kept"),
        ],
    )
    data = load_reviews(path)
    assert [e.event_id for e in data.events] == ["u1:i1:100", "u2:i2:200", "u3:i1:200"]
    first = data.events[0]
    assert (first.user_id, first.item_id, first.rating, first.ts) == ("u1", "i1", 5, 100_000)
    assert first.text == "Great strings. Bright tone."
    assert data.report.format == "jsonl"
    assert (data.report.rows, data.report.loaded, sum(data.report.skipped.values())) == (3, 3, 0)
    for e in data.events:  # every event honours the topic contract
        validate_value("reviews", e.to_json_dict())


def test_gzipped_json_lines_with_2018_field_names(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "r.json.gz", [row_2018("a", "x", 5), row_2018("b", "y", 3)], gz=True
    )
    data = load_reviews(path)
    assert data.report.format == "jsonl.gz"
    assert [(e.user_id, e.item_id, e.rating, e.ts) for e in data.events] == [
        ("b", "y", 4, 3000),
        ("a", "x", 4, 5000),
    ]
    assert data.events[0].text == "Fine. Solid"


def test_gzipped_2014_names_and_python_literal_lines(tmp_path: Path) -> None:
    literal = repr(row_2014("p", "q", 7, text="Loose JSON as the 2014 dump wrote it"))
    path = write_lines(
        tmp_path / "reviews_Musical_Instruments_5.json.gz",
        [row_2014("u", "i", 9), literal],
        gz=True,
    )
    data = load_reviews(path)
    assert [e.event_id for e in data.events] == ["p:q:7", "u:i:9"]


def test_csv_and_zipped_csv_give_the_same_events(tmp_path: Path) -> None:
    rows = [row_2014("u1", "i1", 300, text='Says "hi",\nover two lines'), row_2014("u2", "i1", 100)]
    plain = tmp_path / "r.csv"
    plain.write_text(csv_text(rows), encoding="utf-8")
    zipped = tmp_path / "r.csv.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__MACOSX/._r.csv", b"junk")
        z.writestr("r.csv", csv_text(rows))
    a, b = load_reviews(plain), load_reviews(zipped)
    assert (a.report.format, b.report.format) == ("csv", "zip/csv")
    assert [e.to_json_dict() for e in a.events] == [e.to_json_dict() for e in b.events]
    assert [e.ts for e in a.events] == [100_000, 300_000]
    assert a.events[1].text == 'Good. Says "hi",\nover two lines'
    assert a.events[0].rating == 5


def test_bad_rows_are_skipped_and_counted_by_reason(tmp_path: Path) -> None:
    rows: list[Any] = [
        row_2014("ok", "i1", 10),
        row_2014("", "i1", 11),  # missing_user
        {k: v for k, v in row_2014("u", "i1", 12).items() if k != "asin"},  # missing_item
        row_2014("u", "i2", 13, text="  ", summary=""),  # missing_text
        {**row_2014("u", "i3", 0), "unixReviewTime": "soon", "reviewTime": "never"},  # bad_time
        "{not json",  # malformed_json
        "[1, 2]",  # a JSON value that is not an object
        row_2014("ok", "i1", 10),  # duplicate event id
        row_2014("u\x01", "i4", 14),  # control character in an id
        row_2014("v", "i5", 15, overall="n/a"),  # kept, without a rating
        row_2014("w", "i6", 16, text="", summary="Only a title"),  # kept, summary only
        {**row_2014("z", "i7", 0), "unixReviewTime": None, "reviewTime": "02 28, 2014"},
    ]
    data = load_reviews(write_lines(tmp_path / "bad.jsonl", rows))
    r = data.report
    assert dict(r.skipped) == {
        "missing_user": 1,
        "bad_user": 1,
        "missing_item": 1,
        "missing_text": 1,
        "bad_time": 1,
        "malformed_json": 2,
        "duplicate": 1,
    }
    assert r.first_line["malformed_json"] == 6
    assert r.first_line["duplicate"] == 8
    assert r.rows == len(rows)
    assert r.loaded == 4 == len(data.events)
    by_user = {e.user_id: e for e in data.events}
    assert by_user["v"].rating is None and r.notes["no_rating"] == 1
    assert by_user["w"].text == "Only a title" and r.notes["summary_only"] == 1
    assert by_user["z"].ts == 1393545600_000  # from reviewTime when unixReviewTime is missing
    assert "missing_user=1" in r.summary()


def test_long_text_is_cut_at_a_character_boundary(tmp_path: Path) -> None:
    body = "é" * MAX_TEXT_BYTES  # two bytes each
    data = load_reviews(write_lines(tmp_path / "r.json", [row_2014("u", "i", 1, text=body)]))
    text = data.events[0].text
    assert len(text.encode()) <= MAX_TEXT_BYTES
    assert text.startswith("Good. éé") and data.report.notes["text_truncated"] == 1


def test_json_array_and_limit_keep_the_earliest(tmp_path: Path) -> None:
    path = tmp_path / "all.json"
    path.write_text(
        json.dumps([row_2014("a", "i", 3), row_2014("b", "i", 1), row_2014("c", "i", 2)])
    )
    data = load_reviews(path, limit=2)
    assert [e.user_id for e in data.events] == ["b", "c"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "cannot read"),
        ("broken.json.gz", b"\x1f\x8b\x08\x00garbage", "cannot read"),
        ("two.zip", "two", "expected one .csv or .json"),
        ("not_amazon.csv", b"id,text\n1,hello\n", "not Amazon review data"),
        ("latin1.csv", ",".join(CSV_FIELDS).encode() + b"\nu,i,N,[],caf\xe9,5,s,1,x\n", "UTF-8"),
        ("reviews.parquet", b"PAR1", "unknown data set format"),
        ("fake.zip", b"not a zip", "cannot read"),
    ],
)
def test_unreadable_files_raise_dataset_error(
    tmp_path: Path, name: str, content: Any, message: str
) -> None:
    path = tmp_path / name
    if content == "two":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("a.csv", "x")
            z.writestr("b.csv", "y")
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError, match=message):
        load_reviews(path)


def test_compose_text() -> None:
    assert compose_text("Great!", "Loud.") == "Great! Loud."
    assert compose_text("Great", "Loud.") == "Great. Loud."
    assert compose_text("  ", " Loud ") == "Loud"
    assert compose_text("", "") == ""


def test_real_musical_instruments_file() -> None:
    if not AMAZON.is_file():
        pytest.skip("../shared/data not present")
    data = load_reviews(AMAZON)
    assert data.report.format == "zip/csv"
    assert data.report.loaded == len(data.events) == 10_261
    assert not data.report.skipped
    assert data.report.notes["summary_only"] == 7  # the 7 empty review texts keep their summary
    ts = [e.ts for e in data.events]
    assert ts == sorted(ts)
    assert len({e.user_id for e in data.events}) == 1_429
    assert len({e.item_id for e in data.events}) == 900
    assert len({e.event_id for e in data.events}) == 10_261
    for e in data.events[::500]:
        validate_value("reviews", e.to_json_dict())
