"""``moodstream index build`` / ``moodstream items``: catalog or past reviews -> index folder."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

import stream.cli.index as cli_index
from stream.adapters.index import FaissItemIndex, read_ids, read_manifest
from stream.cli import cli, main
from stream.errors import DatasetError, IndexError_
from stream.offline.times import parse_when
from stream.ports import Scores
from tests.fixtures.tiny_model import build_tiny_model

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
AMAZON = (
    DATA / "reviews" / "amazon_musical_instruments_5core" / "Musical_instruments_reviews.csv.zip"
)


class HashModel:
    """Deterministic fake embeddings: each text maps to a fixed random unit vector."""

    version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, texts: Sequence[str]) -> Scores:
        self.calls.append(len(texts))
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=16)
            rows.append(v / np.linalg.norm(v))
        n = len(texts)
        return Scores(
            sentiment=np.full((n, 3), 1 / 3, dtype=np.float32),
            emotions=np.zeros((n, 28), dtype=np.float32),
            embedding=np.array(rows, dtype=np.float32),
            truncated=np.zeros(n, dtype=bool),
        )


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> HashModel:
    model = HashModel()
    monkeypatch.setattr(cli_index, "load_model", lambda settings: model)
    return model


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli, args)


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_catalog_build_then_items(tmp_path: Path, fake_model: HashModel) -> None:
    catalog = write_jsonl(
        tmp_path / "catalog.jsonl",
        [
            {"item_id": "s1", "title": "Strings", "text": "Bright steel strings."},
            {"item_id": "s2", "title": "Capo", "text": ""},
            {"title": "orphan"},
            {"item_id": "s3", "title": "Tuner", "text": "Clip-on tuner."},
        ],
    )
    out = tmp_path / "idx"
    result = invoke(
        [
            "index",
            "build",
            "--catalog",
            str(catalog),
            "--out",
            str(out),
            "--batch-size",
            "2",
            "--model-dir",
            str(tmp_path / "no-card"),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "indexed 3 items (flat)" in result.stdout
    assert "skipped 1 catalog rows" in result.stderr and "line 3" in result.stderr
    assert max(fake_model.calls) <= 2
    manifest = read_manifest(out)
    assert manifest.source == "catalog:catalog.jsonl" and manifest.dim == 16
    assert manifest.model_sha256 == hashlib.sha256(b"fake-1").hexdigest()  # no card.json there
    index = FaissItemIndex.load(out)
    expected = HashModel().predict(["Strings. Bright steel strings."]).embedding[0]
    assert np.allclose(index.vectors(["s1"])[0], expected, atol=1e-6)

    listed = invoke(["items", "--ids", "--index-dir", str(out)])
    assert listed.exit_code == 0 and listed.stdout.splitlines() == ["s1", "s2", "s3"]
    summary = invoke(["items", "--index-dir", str(out)])
    assert json.loads(summary.stdout)["count"] == 3


def test_reviews_build_uses_only_the_past(tmp_path: Path, fake_model: HashModel) -> None:
    reviews = write_jsonl(
        tmp_path / "reviews.jsonl",
        [
            {"item_id": "old", "text": "first", "ts": 1_000},
            {"item_id": "old", "text": "second", "ts": 2_000},
            {"item_id": "mixed", "text": "early", "ts": 1_500},
            {"item_id": "mixed", "text": "late", "ts": 9_000},
            {"item_id": "future", "text": "not yet", "ts": 9_000},
        ],
    )
    out = tmp_path / "idx"
    result = invoke(
        ["index", "build", "--from-reviews", str(reviews), "--until", "5000", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert read_ids(out) == ["mixed", "old"]
    vec = FaissItemIndex.load(out).vectors(["old", "mixed"])
    emb = HashModel().predict(["first", "second", "early"]).embedding
    mean = emb[0] + emb[1]
    assert np.allclose(vec[0], mean / np.linalg.norm(mean), atol=1e-6)  # mean of its reviews
    assert np.allclose(vec[1], emb[2], atol=1e-6)  # "late" is after --until
    assert "until 5000" in read_manifest(out).source


def test_custom_review_loader_hook(tmp_path: Path, fake_model: HashModel) -> None:
    source = tmp_path / "anything.bin"
    source.write_bytes(b"opaque")
    loader = f"{__name__}:fake_loader"
    result = invoke(
        [
            "index",
            "build",
            "--from-reviews",
            str(source),
            "--until",
            "1970-01-02",
            "--reviews-format",
            loader,
            "--out",
            str(tmp_path / "i"),
        ]
    )
    assert result.exit_code == 0, result.output
    assert read_ids(tmp_path / "i") == ["x"]


def fake_loader(path: Path) -> list[object]:
    class Row:
        def __init__(self, item_id: str, ts: int) -> None:
            self.item_id, self.text, self.ts = item_id, f"text of {item_id}", ts

    return [Row("x", 1_000), Row("y", 200_000_000)]  # y is after 1970-01-02


def test_until_parsing() -> None:
    assert parse_when("1388534400000") == 1_388_534_400_000
    assert parse_when("2014-01-01") == 1_388_534_400_000
    assert parse_when("2014-01-01T01:00:00+01:00") == 1_388_534_400_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "build", "--out", "x"], "exactly one of"),
        (["index", "build", "--catalog", "a", "--from-reviews", "b", "--out", "x"], "exactly one"),
        (["index", "build", "--catalog", "a", "--until", "5", "--out", "x"], "--until only"),
        (["index", "build", "--catalog", "a"], "--out DIR"),
        (["index", "build", "--from-reviews", "a", "--until", "soon", "--out", "x"], "ISO"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], message: str, fake_model: HashModel) -> None:
    result = invoke(args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_data_errors_are_one_readable_line(
    tmp_path: Path, fake_model: HashModel, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = write_jsonl(tmp_path / "empty.jsonl", [{"title": "no id"}])
    for args, error in [
        (["index", "build", "--catalog", str(empty), "--out", str(tmp_path / "o")], DatasetError),
        (["index", "build", "--catalog", str(tmp_path / "nope.jsonl"), "--out", "o"], DatasetError),
        (["items", "--ids", "--index-dir", str(tmp_path)], IndexError_),
    ]:
        assert isinstance(invoke(args).exception, error)
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("moodstream: error: ")
        assert "Traceback" not in err


def test_end_to_end_with_a_real_onnx_model(tmp_path: Path) -> None:
    """No fake: the tiny ONNX model through OnnxSentimentModel.from_settings."""
    model_dir = build_tiny_model(tmp_path / "model")
    catalog = write_jsonl(
        tmp_path / "c.jsonl",
        [
            {"item_id": "good", "title": "great amazing guitar", "text": ""},
            {"item_id": "bad", "title": "terrible awful strings", "text": ""},
        ],
    )
    out = tmp_path / "idx"
    result = invoke(
        [
            "index",
            "build",
            "--catalog",
            str(catalog),
            "--out",
            str(out),
            "--model-dir",
            str(model_dir),
        ]
    )
    assert result.exit_code == 0, result.output
    card_sha = hashlib.sha256((model_dir / "card.json").read_bytes()).hexdigest()
    assert read_manifest(out).model_sha256 == card_sha == cli_index.model_fingerprint(model_dir)
    index = FaissItemIndex.load(out, expected_dim=384, model_sha256=card_sha)
    assert np.allclose(np.linalg.norm(index.vectors(["good", "bad"]), axis=1), 1.0, atol=1e-5)


def test_amazon_reviews_before_a_split(tmp_path: Path, fake_model: HashModel) -> None:
    if not AMAZON.is_file():
        pytest.skip("../shared/data not present")
    out = tmp_path / "amazon"
    result = invoke(
        [
            "index",
            "build",
            "--from-reviews",
            str(AMAZON),
            "--until",
            "2013-01-01",
            "--reviews-per-item",
            "2",
            "--out",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert 300 < manifest.count < 900  # items with a review before 2013 only
    assert manifest.kind == "flat"


def test_items_without_an_index_dir_lists_the_demo_index_the_worker_serves(
    tmp_path: Path, fake_model: HashModel
) -> None:
    from stream.sim.simulate import make_catalog

    model_dir = build_tiny_model(tmp_path / "model")
    args = ["items", "--ids", "--model-dir", str(model_dir), "--data-dir", str(tmp_path / "w")]
    result = invoke(args)
    assert result.exit_code == 0, result.output
    catalog = [item.item_id for item in make_catalog(0, 500)]
    assert result.output.split() == catalog
    assert invoke(args).output == result.output  # the cached index, not a rebuild
