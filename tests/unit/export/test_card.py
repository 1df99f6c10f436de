"""The shipped artifact keeps the card contract the serving adapter reads."""

from __future__ import annotations

import json

import pytest

from export.data import sha256_file
from stream.ports import EMOTIONS, SENTIMENTS
from stream.settings import DEFAULT_MODEL_DIR

SHIPPED = ("model.int8.onnx", "model.fp16.onnx", "tokenizer.json")


@pytest.fixture(scope="module")
def card() -> dict[str, object]:
    path = DEFAULT_MODEL_DIR / "card.json"
    if not path.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL_DIR} (run `moodstream export onnx`)")
    loaded = json.loads(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_card_hashes_and_sizes_match_the_shipped_files(card: dict[str, object]) -> None:
    files = card["files"]
    assert isinstance(files, dict) and sorted(files) == sorted(SHIPPED)
    for name, entry in files.items():
        path = DEFAULT_MODEL_DIR / name
        assert path.stat().st_size == entry["bytes"], name
        assert sha256_file(path) == entry["sha256"], name


def test_card_contract_fields(card: dict[str, object]) -> None:
    assert card["name"] == "moodstream-minilm-v1"
    assert card["max_length"] == 128 and card["embedding_dim"] == 384
    assert card["inputs"] == ["input_ids", "attention_mask"]
    assert card["outputs"] == ["sentiment", "emotions", "embedding"]
    assert card["labels"] == {"sentiment": list(SENTIMENTS), "emotions": list(EMOTIONS)}
    thresholds = card["thresholds"]
    assert isinstance(thresholds, dict) and list(thresholds) == list(EMOTIONS)
    assert all(0.0 < t < 1.0 for t in thresholds.values())
    version = str(card["version"])
    files = card["files"]
    assert isinstance(files, dict)
    assert version == "0.0.0-provisional" or version.endswith(
        files["model.int8.onnx"]["sha256"][:12]
    )
    assert {"validation", "heldout", "int8_vs_fp32"} <= set(card["metrics"])  # type: ignore[arg-type]
    assert "training" in card and "base_model" in card


def test_folder_is_small_and_holds_no_fp32_model_or_checkpoint() -> None:
    if not DEFAULT_MODEL_DIR.is_dir():
        pytest.skip("no shipped model folder")
    names = {p.name for p in DEFAULT_MODEL_DIR.iterdir()}
    assert names <= {*SHIPPED, "card.json"}
    assert sum(p.stat().st_size for p in DEFAULT_MODEL_DIR.iterdir()) < 80 * 1024 * 1024


def test_shipped_tokenizer_neither_pads_nor_truncates(card: dict[str, object]) -> None:
    raw = json.loads((DEFAULT_MODEL_DIR / "tokenizer.json").read_text())
    assert raw["padding"] is None and raw["truncation"] is None
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(DEFAULT_MODEL_DIR / "tokenizer.json"))
    assert len(tok.encode("good").ids) == 3  # [CLS] good [SEP], no padding to 128
    assert len(tok.encode("word " * 300).ids) == 302


def test_onnx_files_expose_the_card_io(card: dict[str, object]) -> None:
    ort = pytest.importorskip("onnxruntime")
    import numpy as np

    session = ort.InferenceSession(
        str(DEFAULT_MODEL_DIR / "model.int8.onnx"), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()] == card["inputs"]
    assert all(i.type == "tensor(int64)" for i in session.get_inputs())
    assert [o.name for o in session.get_outputs()] == card["outputs"]
    ids = np.array([[101, 2204, 102, 0], [101, 2919, 2204, 102]], dtype=np.int64)
    sent, emo, emb = session.run(
        None, {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}
    )
    assert sent.shape == (2, 3) and emo.shape == (2, 28) and emb.shape == (2, 384)
    assert sent.dtype == emo.dtype == emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-3)
