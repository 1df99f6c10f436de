"""The ONNX adapter on a tiny real model (tests/fixtures/tiny_model.py), plus the shipped model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from stream.adapters.sentiment import (
    CPU_PROVIDER,
    EMPTY_SENTIMENT,
    BatchPlan,
    OnnxSentimentModel,
    resolve_providers,
)
from stream.core.labels import ekman, sentiment_labels
from stream.errors import ConfigError, ModelError
from stream.ports import EKMAN, EMOTIONS, Scores, SentimentModel
from stream.settings import DEFAULT_MODEL_DIR, Settings
from tests.fixtures.tiny_model import NAME, VERSION, build_tiny_model

MAX_LENGTH = 16  # tokens, [CLS] and [SEP] included


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def model(tiny_dir: Path) -> OnnxSentimentModel:
    return OnnxSentimentModel.load(tiny_dir)


@pytest.fixture
def copy_dir(tiny_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_dir, tmp_path / "model"))


def _edit_card(folder: Path, edit: dict[str, object]) -> None:
    path = folder / "card.json"
    card = json.loads(path.read_text())
    card.update(edit)
    path.write_text(json.dumps(card))


MIXED = [
    "the guitar strings sound very good and the day was great",
    "bad",
    "i hate this product it is the worst",
    "love it",
    "the movie was not excellent",
    "a",
    "happy happy joy",
    "terrible awful horrible day with my guitar",
]


def test_is_a_sentiment_model(model: OnnxSentimentModel) -> None:
    port: SentimentModel = model  # the port is a typing Protocol: checked by mypy, not isinstance
    assert isinstance(port.predict(["good"]), Scores)
    assert port.version == VERSION
    assert model.name == NAME


def test_batch_results_match_single_texts_in_input_order(model: OnnxSentimentModel) -> None:
    batch = model.predict(MIXED)
    for i, text in enumerate(MIXED):
        alone = model.predict([text])
        np.testing.assert_allclose(batch.sentiment[i], alone.sentiment[0], atol=1e-5)
        np.testing.assert_allclose(batch.emotions[i], alone.emotions[0], atol=1e-5)
        np.testing.assert_allclose(batch.embedding[i], alone.embedding[0], atol=1e-5)


def test_order_survives_forced_sub_batches(tiny_dir: Path, model: OnnxSentimentModel) -> None:
    small = OnnxSentimentModel.load(tiny_dir, plan=BatchPlan(max_texts=2, call_cost=0.0))
    registry = CollectorRegistry()
    small.register_metrics(registry)
    texts = MIXED * 3
    np.testing.assert_allclose(small.predict(texts).sentiment, model.predict(texts).sentiment, 1e-5)
    calls = registry.get_sample_value("moodstream_inference_calls_total")
    assert calls is not None and calls >= len(texts) / 2


def test_polarity_reaches_the_right_row(model: OnnxSentimentModel) -> None:
    scores = model.predict(["good great love", "bad awful hate", "good great love"])
    assert scores.valence[0] > 0.5 and scores.valence[2] > 0.5
    assert scores.valence[1] < -0.5
    assert sentiment_labels(scores.sentiment) == ["positive", "negative", "positive"]


def test_long_text_is_truncated_and_flagged(model: OnnxSentimentModel) -> None:
    fits = " ".join(["good"] * (MAX_LENGTH - 2))
    overflows = fits + " bad bad bad bad"
    scores = model.predict([fits, overflows, "bad"])
    assert scores.truncated.tolist() == [False, True, False]
    # truncation keeps the head: the overflowing words are not seen at all
    np.testing.assert_allclose(scores.sentiment[1], scores.sentiment[0], atol=1e-6)


def test_empty_texts_are_neutral_and_skip_the_model(model: OnnxSentimentModel) -> None:
    scores = model.predict(["", "good great", "   ", "\t\n"])
    for row in (0, 2, 3):
        np.testing.assert_allclose(scores.sentiment[row], EMPTY_SENTIMENT)
        assert scores.valence[row] == 0.0
        assert not scores.embedding[row].any()
        assert ekman(scores.emotions[row])[0, EKMAN.index("neutral")] == 1.0
        assert scores.emotions[row].max() < 1.0  # low confidence
    assert sentiment_labels(scores.sentiment)[0] == "neutral"
    assert scores.valence[1] > 0.5
    assert not scores.truncated.any()


def test_all_empty_and_zero_length_batches(model: OnnxSentimentModel) -> None:
    assert model.predict(["", ""]).sentiment.shape == (2, 3)
    none = model.predict([])
    assert none.sentiment.shape == (0, 3)
    assert none.emotions.shape == (0, len(EMOTIONS))
    assert none.embedding.shape == (0, 384)


def test_embeddings_are_unit_length(model: OnnxSentimentModel) -> None:
    norms = np.linalg.norm(model.predict(MIXED).embedding, axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_auto_picks_cpu_and_int8_here(model: OnnxSentimentModel) -> None:
    assert model.provider == CPU_PROVIDER
    assert model.variant == "int8"


def test_auto_provider_order() -> None:
    available = ["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"]
    assert resolve_providers("auto", available) == [
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        CPU_PROVIDER,
    ]
    assert resolve_providers("auto", [CPU_PROVIDER]) == [CPU_PROVIDER]
    assert resolve_providers("cuda, cpu", available) == ["CUDAExecutionProvider", CPU_PROVIDER]


def test_unavailable_provider_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not available"):
        resolve_providers("cuda", [CPU_PROVIDER])


def test_gpu_that_fails_to_start_falls_back_to_cpu_int8(tiny_dir: Path) -> None:
    # ONNX Runtime without CUDA ignores the CUDA provider; auto must then not keep fp16 on CPU.
    pretend = ["CUDAExecutionProvider", CPU_PROVIDER]
    with pytest.warns(UserWarning):
        loaded = OnnxSentimentModel.load(tiny_dir, available=pretend)
    assert (loaded.provider, loaded.variant) == (CPU_PROVIDER, "int8")


def test_explicit_variant_is_honoured(tiny_dir: Path) -> None:
    assert OnnxSentimentModel.load(tiny_dir, variant="fp32").variant == "fp32"
    with pytest.raises(ConfigError):
        OnnxSentimentModel.load(tiny_dir, variant="int4")


def test_sha_mismatch_is_a_model_error(copy_dir: Path) -> None:
    card = json.loads((copy_dir / "card.json").read_text())
    card["files"]["model.int8.onnx"]["sha256"] = "0" * 64
    (copy_dir / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="sha256") as err:
        OnnxSentimentModel.load(copy_dir)
    assert "\n" not in str(err.value)
    assert OnnxSentimentModel.load(copy_dir, verify=False).predict(["good"]).valence[0] > 0


def test_corrupt_file_is_a_model_error(copy_dir: Path) -> None:
    path = copy_dir / "tokenizer.json"
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"tokenizer\.json"):
        OnnxSentimentModel.load(copy_dir)


def test_missing_pieces_are_model_errors(copy_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        OnnxSentimentModel.load(tmp_path / "nowhere")
    (copy_dir / "model.int8.onnx").unlink()
    with pytest.raises(ModelError, match=r"model\.int8\.onnx"):
        OnnxSentimentModel.load(copy_dir)
    (copy_dir / "card.json").unlink()
    with pytest.raises(ModelError, match=r"card\.json"):
        OnnxSentimentModel.load(copy_dir)


def test_card_with_other_label_order_is_rejected(copy_dir: Path) -> None:
    _edit_card(copy_dir, {"labels": {"sentiment": ["positive", "neutral", "negative"],
                                     "emotions": list(EMOTIONS)}})  # fmt: skip
    with pytest.raises(ModelError, match="sentiment labels"):
        OnnxSentimentModel.load(copy_dir)


def test_card_thresholds_per_emotion_or_one_for_all(
    copy_dir: Path, model: OnnxSentimentModel
) -> None:
    per_emotion = model.card.thresholds
    assert per_emotion[EMOTIONS.index("joy")] == pytest.approx(0.4)
    assert per_emotion[EMOTIONS.index("fear")] == pytest.approx(0.3)
    _edit_card(copy_dir, {"thresholds": {"emotion": 0.25}})
    np.testing.assert_allclose(OnnxSentimentModel.load(copy_dir).card.thresholds, 0.25)


def test_from_settings_and_metrics(tiny_dir: Path) -> None:
    registry = CollectorRegistry()
    settings = Settings(model_dir=str(tiny_dir), providers="cpu", intra_op_threads=1)
    loaded = OnnxSentimentModel.from_settings(settings, registry=registry)
    loaded.predict(["good", "", " ".join(["bad"] * 40)])
    value = registry.get_sample_value
    assert value("moodstream_inference_provider", {"provider": CPU_PROVIDER}) == 1.0
    assert value("moodstream_inference_texts_total") == 3.0
    assert value("moodstream_inference_truncated_texts_total") == 1.0
    info = {"provider": CPU_PROVIDER, "name": NAME, "version": VERSION, "variant": "int8"}
    assert value("moodstream_inference_info", info) == 1.0


@given(st.lists(st.integers(min_value=1, max_value=128), max_size=80), st.integers(1, 16))
def test_plan_cuts_cover_the_batch_within_bounds(lengths: list[int], max_texts: int) -> None:
    plan = BatchPlan(max_texts=max_texts, max_tokens=512, call_cost=32.0)
    lengths.sort()
    chunks = plan.cut(lengths)
    assert [i for start, end in chunks for i in range(start, end)] == list(range(len(lengths)))
    for start, end in chunks:
        assert 1 <= end - start <= max_texts
        assert end - start == 1 or (end - start) * lengths[end - 1] <= 512


def test_plan_separates_short_from_long() -> None:
    plan = BatchPlan(max_texts=64, max_tokens=8192, call_cost=32.0)
    assert plan.cut([8] * 10 + [120] * 10) == [(0, 10), (10, 20)]
    assert plan.cut([30, 31, 32, 33]) == [(0, 4)]  # padding a token or two beats another call


# --- the shipped model: behaviour a trained model must show ------------------------------------


def _shipped() -> OnnxSentimentModel:
    card = DEFAULT_MODEL_DIR / "card.json"
    if not card.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL_DIR}")
    if str(json.loads(card.read_text())["version"]).startswith("0.0.0-provisional"):
        pytest.skip("only the provisional (untrained) model is shipped")
    return OnnxSentimentModel.load(DEFAULT_MODEL_DIR)


def test_shipped_model_gets_the_valence_sign() -> None:
    scores = _shipped().predict([
        "Absolutely love this guitar, it sounds wonderful and I play it every day.",
        "Terrible strings, they broke after one day and the sound is awful. Waste of money.",
    ])  # fmt: skip
    assert scores.valence[0] > 0.3
    assert scores.valence[1] < -0.3


def test_shipped_model_finds_joy_and_anger() -> None:
    scores = _shipped().predict([
        "I'm so happy and excited, this is the best day ever!",
        "I am furious, this is outrageous and I'm sick of being lied to!",
    ])  # fmt: skip
    groups = ekman(scores.emotions)
    assert EKMAN[int(groups[0].argmax())] == "joy"
    assert EKMAN[int(groups[1].argmax())] == "anger"


def test_shipped_int8_scores_do_not_depend_on_the_batch_a_text_came_in() -> None:
    """A replay batches texts differently from the live worker; it must fold the same state."""
    model = _shipped()
    texts = [
        "Great strings, bright tone.",
        "Broke after a week and the tuning pegs slip constantly, very disappointed with it.",
        "ok",
        "The case is sturdy but the zipper feels cheap; I would still buy it again for the price.",
        "I am furious, this is outrageous!",
        "Wonderful " * 40,
    ]
    alone = [model.predict([t]) for t in texts]
    together = model.predict(texts[::-1])
    for i, one in enumerate(alone):
        j = len(texts) - 1 - i
        assert np.abs(one.sentiment[0] - together.sentiment[j]).max() < 1e-4
        assert np.abs(one.emotions[0] - together.emotions[j]).max() < 1e-4
        assert np.abs(one.embedding[0] - together.embedding[j]).max() < 1e-4
