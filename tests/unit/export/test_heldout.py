"""Held-out scoring helpers on tiny inputs written here (no model, no third-party data)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np

from export.heldout import load_review_rows, review_text, same_item_nn_rate, stars_agreement


def test_review_text_puts_the_summary_first() -> None:
    assert review_text("Great strings", "They stay in tune.") == "Great strings. They stay in tune."
    assert review_text("Great!", "Loud.") == "Great! Loud."
    assert review_text("", " body ") == "body" and review_text("only", "") == "only"


def test_review_rows_come_from_the_zipped_csv_and_skip_bad_rows(tmp_path: Path) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["reviewerID", "asin", "reviewText", "overall", "summary"])
    w.writerows(
        [
            ["u1", "A", "Nice tuner", "5.0", "Good"],
            ["u2", "B", "", "1.0", ""],
            ["u3", "B", "Broke fast", "x", "Bad"],
            ["u4", "B", "Broke fast", "2.0", "Bad"],
        ]
    )
    path = tmp_path / "r.csv.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("r.csv", buf.getvalue())
    assert load_review_rows(path) == [("A", "Good. Nice tuner", 5), ("B", "Bad. Broke fast", 2)]


def test_stars_agreement_ignores_three_stars_and_counts_signs() -> None:
    neg, pos = [0.8, 0.1, 0.1], [0.1, 0.1, 0.8]
    sent = np.array([pos, neg, pos, neg], np.float32)
    stars = np.array([5, 1, 3, 4])
    got = stars_agreement(sent, stars)
    assert got["polar_rows"] == 3
    assert got["sign_accuracy"] == 2 / 3 and got["negative_recall"] == 1.0


def test_same_item_nn_rate_excludes_the_row_itself() -> None:
    emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.7, 0.7]], np.float32)
    items = ["a", "a", "b", "b", "a"]
    # rows 0-3 find their pair; row 4 is nearest to row 1 or row 3 (ties broken by argmax)
    rate = same_item_nn_rate(emb, items)
    assert rate in (4 / 5, 1.0)
    assert same_item_nn_rate(emb, ["a", "b", "c", "d", "e"]) == 0.0
