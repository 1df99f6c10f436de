"""Torch-side scoring of a model in training: selection score, prediction and the metric sets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from tokenizers import Tokenizer

from export import quality
from export.data import DataPaths, load_sst2
from export.onnx_model import MoodModel, pad_batch
from export.splits import encode, heldout_halves
from stream.ports import EMOTIONS, SENTIMENTS

PredictFn = Callable[[Sequence[str]], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]]


def selection_score(
    sent_probs: npt.NDArray[np.float32],
    sent_gold: npt.NDArray[np.int64],
    emo_probs: npt.NDArray[np.float32],
    emo_gold: npt.NDArray[np.bool_],
) -> dict[str, float]:
    """What a checkpoint is chosen on: binary sentence accuracy + GoEmotions macro-F1 (thresholds
    tuned on the same select rows: the score compares checkpoints, it is not a reported figure)."""
    acc = quality.binary_accuracy(sent_probs, sent_gold) if len(sent_gold) else 0.0
    f1 = (
        quality.macro_f1(emo_probs, emo_gold, quality.tune_thresholds(emo_probs, emo_gold))
        if len(emo_gold)
        else 0.0
    )
    return {"sentence_accuracy": acc, "goemotions_macro_f1": f1, "score": acc + f1}


@torch.no_grad()
def predict(
    model: MoodModel, tok: Tokenizer, texts: Sequence[str], batch_size: int = 64
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Sentiment softmax and emotion sigmoid probabilities, rows in ``texts`` order."""
    model.eval()
    ids = encode(tok, texts)
    order = np.argsort([len(i) for i in ids], kind="stable")
    sent = np.zeros((len(texts), len(SENTIMENTS)), np.float32)
    emo = np.zeros((len(texts), len(EMOTIONS)), np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        b = pad_batch([ids[i] for i in idx])
        s, e, _ = model(torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask))
        sent[idx] = torch.softmax(s, -1).numpy()
        emo[idx] = torch.sigmoid(e).numpy()
    return sent, emo


def evaluate(
    sent_probs: npt.NDArray[np.float32],
    sent_gold: npt.NDArray[np.int64],
    binary_mask: npt.NDArray[np.bool_],
    emo_probs: npt.NDArray[np.float32],
    emo_gold: npt.NDArray[np.bool_],
    thresholds: npt.NDArray[np.float64],
) -> dict[str, Any]:
    """Binary (pos vs neg) accuracy on SST-2 rows, 3-way accuracy on SST-5 rows, emotion F1."""
    per_label = quality.f1_scores(emo_probs >= thresholds[None, :], emo_gold)
    at_half = quality.macro_f1(emo_probs, emo_gold, np.full(len(EMOTIONS), 0.5))
    three = ~binary_mask
    return {
        "sst2_accuracy": quality.binary_accuracy(sent_probs[binary_mask], sent_gold[binary_mask]),
        "sst2_rows": int(binary_mask.sum()),
        "sst5_3way_accuracy": quality.accuracy(sent_probs[three].argmax(1), sent_gold[three]),
        "sst5_rows": int(three.sum()),
        "goemotions_macro_f1": float(per_label.mean()),
        "goemotions_macro_f1_at_0.5": at_half,
        "goemotions_rows": len(emo_gold),
        "goemotions_f1_per_label": {
            n: round(float(f), 4) for n, f in zip(EMOTIONS, per_label, strict=True)
        },
    }


def train_distribution_sst2(paths: DataPaths, predict_fn: PredictFn) -> dict[str, Any]:
    """``sst2/dev.tsv``: GLUE training phrases, so it overlaps training sentences (optimistic)."""
    rows = load_sst2(paths.sst2_dev)
    probs, _ = predict_fn([r.text for r in rows])
    gold = np.array([r.label for r in rows], dtype=np.int64)
    return {"accuracy": quality.binary_accuracy(probs, gold), "rows": len(rows)}


def heldout_metrics(
    paths: DataPaths,
    predict_fn: PredictFn,
    thresholds: npt.NDArray[np.float64],
    seed: int = 13,
) -> dict[str, Any]:
    """Score the *test* halves of the dev files (sentence level), which training, selection and
    threshold tuning never saw: binary accuracy on sst5/dev.txt binarised, GoEmotions F1."""
    halves = heldout_halves(paths, seed)
    s_rows = halves["sst5"][1]
    go = halves["goemotions"][1]
    s_p, _ = predict_fn([r.text for r in s_rows])
    _, e_p = predict_fn([r.text for r in go])
    s_y = np.array([r.label for r in s_rows], dtype=np.int64)
    e_y = quality.multi_hot([r.labels for r in go], len(EMOTIONS))
    out = evaluate(s_p, s_y, np.ones(len(s_y), bool), e_p, e_y, thresholds)
    out["sst5_sentence_binary_accuracy"] = out.pop("sst2_accuracy")
    out["sst5_sentence_rows"] = out.pop("sst2_rows")
    del out["sst5_3way_accuracy"], out["sst5_rows"]
    return out
