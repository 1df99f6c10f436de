"""Loaders parse small fixture files written here (never the third-party data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from export.data import (
    DataPaths,
    EmotionRow,
    SentimentRow,
    balanced_phrases,
    binary_only,
    dev_halves,
    fingerprint,
    length_batches,
    load_goemotions,
    load_sst2,
    load_sst5,
    sha256_file,
    split_rows,
)
from stream.errors import DatasetError
from stream.ports import EMOTIONS


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_sst2_maps_labels_strips_and_skips_bad_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "train.tsv",
        "sentence\tlabel\nwhat a film \t1\n dull , dull \t0\nno label here\n\t1\nodd\t7\n",
    )
    assert load_sst2(path) == [SentimentRow("what a film", 2), SentimentRow("dull , dull", 0)]


def test_sst5_collapses_five_classes_to_three(tmp_path: Path) -> None:
    lines = [
        "0 awful",
        "1 weak",
        "2 it exists",
        "3 nice",
        "4 superb",
        "x broken",
        "9 out of range",
        "3",
    ]
    rows = load_sst5(_write(tmp_path / "train.txt", "\n".join(lines) + "\n"))
    assert [r.label for r in rows] == [0, 0, 1, 2, 2]
    assert rows[2] == SentimentRow("it exists", 1)


def test_goemotions_multi_label_and_label_order_check(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "go.tsv",
        "I love it\t18,17\tabc\nmeh\t27\tdef\nbad ids\tx,1\tg\nrange\t28\th\n\t1\ti\n",
    )
    labels = _write(tmp_path / "labels.txt", "\n".join(EMOTIONS) + "\n")
    assert load_goemotions(path, labels) == [
        EmotionRow("I love it", (17, 18)),
        EmotionRow("meh", (27,)),
    ]
    wrong = _write(tmp_path / "wrong.txt", "\n".join(reversed(EMOTIONS)) + "\n")
    with pytest.raises(DatasetError, match="EMOTIONS order"):
        load_goemotions(path, wrong)


def test_unreadable_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="cannot read"):
        load_sst2(tmp_path / "missing.tsv")
    with pytest.raises(DatasetError, match="not found"):
        DataPaths(tmp_path).check()


def test_split_is_seeded_disjoint_and_complete() -> None:
    rows = list(range(1000))
    train, val = split_rows(rows, 0.05, seed=3)
    assert len(val) == 50 and sorted(train + val) == rows
    assert split_rows(rows, 0.05, seed=3) == (train, val)
    assert split_rows(rows, 0.05, seed=4)[1] != val
    with pytest.raises(DatasetError):
        split_rows(rows, 1.5, seed=3)


def test_length_batches_cover_every_row_once_and_bucket_lengths() -> None:
    lengths = [(i * 37) % 101 + 1 for i in range(1000)]
    batches = length_batches(lengths, batch_size=16, seed=1, chunk_batches=8)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert all(len(b) <= 16 for b in batches)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < 15  # random batches would spread ~90 tokens
    assert batches == length_batches(lengths, batch_size=16, seed=1, chunk_batches=8)


def test_fingerprint_records_rows_bytes_and_hash(tmp_path: Path) -> None:
    path = _write(tmp_path / "f.txt", "abc")
    info = fingerprint(path, rows=1)
    assert info["rows"] == 1 and info["bytes"] == 3
    assert info["sha256"] == sha256_file(path)
    assert info["sha256"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_binary_only_drops_neutral_sentences() -> None:
    rows = [SentimentRow("a", 0), SentimentRow("b", 1), SentimentRow("c", 2)]
    assert binary_only(rows) == [SentimentRow("a", 0), SentimentRow("c", 2)]


def test_dev_halves_are_seeded_disjoint_and_complete() -> None:
    rows = list(range(101))
    select, test = dev_halves(rows, seed=7)
    assert sorted(select + test) == rows and not set(select) & set(test)
    assert abs(len(select) - len(test)) <= 1
    assert dev_halves(rows, seed=7) == (select, test)
    assert dev_halves(rows, seed=8) != (select, test)


def test_balanced_phrases_are_seeded_class_balanced_and_long_enough() -> None:
    rows = [SentimentRow(f"neg phrase {i}", 0) for i in range(100)]
    rows += [SentimentRow(f"a positive phrase {i}", 2) for i in range(300)]
    rows += [SentimentRow("good", 2)] * 50
    sample = balanced_phrases(rows, 40, seed=1, min_words=2)
    assert len(sample) == 40
    assert sum(r.label == 0 for r in sample) == 20
    assert all(len(r.text.split()) >= 2 for r in sample)
    assert sample == balanced_phrases(rows, 40, seed=1, min_words=2)
    assert len(balanced_phrases(rows, 0, seed=1, min_words=4)) == 300  # all long enough ones
    assert len(balanced_phrases(rows, 1000, seed=1)) == 100 + 350  # capped by what exists
