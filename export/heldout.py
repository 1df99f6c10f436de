"""Held-out scoring of shipped model folders (int8 ONNX): the figures a model card and a model
change are judged on, computed the same way for the old and the new model in one run.

    python -m export.heldout --model-dir models/moodstream-minilm-v1 --model-dir OTHER \
        [--base] [--out results.json]

Sentence-level sentiment: ``sst5/dev.txt`` binarised (0-1 negative, 3-4 positive, 2 dropped; the
same sentences as GLUE's SST-2 dev set), whole and its seeded *test* half (the half that training
never selects on). GoEmotions dev macro-F1 at the card's thresholds, whole and test half. Reviews:
sign agreement of valence (P(pos) - P(neg)) with the stars (stars != 3) on the Musical Instruments
reviews. Embedding: the same-item nearest-neighbour rate (a review's nearest other review by
cosine is a review of the same item). ``sst2/dev.tsv`` phrases are reported as train-distribution.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export import quality
from export.data import DataPaths, binary_only, load_goemotions, load_sst2, load_sst5
from stream.ports import EMOTIONS
from stream.settings import REPO_ROOT

REVIEWS = (
    Path("reviews") / "amazon_musical_instruments_5core" / "Musical_instruments_reviews.csv.zip"
)


def review_text(summary: str, body: str) -> str:
    """Summary first, then the body (as the stream composes review events)."""
    summary, body = summary.strip(), body.strip()
    if not summary or not body:
        return summary or body
    return f"{summary} {body}" if summary[-1] in ".!?" else f"{summary}. {body}"


def load_review_rows(path: Path) -> list[tuple[str, str, int]]:
    """(item id, text, stars) per review with text and a 1-5 rating, file order."""
    rows: list[tuple[str, str, int]] = []
    with zipfile.ZipFile(path) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".csv"))
        with zf.open(name) as fh:
            for row in csv.DictReader(io.TextIOWrapper(fh, encoding="utf-8")):
                text = review_text(row.get("summary") or "", row.get("reviewText") or "")
                try:
                    stars = int(float(row.get("overall") or ""))
                except ValueError:
                    continue
                if text and 1 <= stars <= 5:
                    rows.append((row["asin"], text, stars))
    return rows


def stars_agreement(
    sentiment: npt.NDArray[np.float32], stars: npt.NDArray[np.int64]
) -> dict[str, float]:
    """Sign of P(pos) - P(neg) against the sign of stars - 3 (3-star reviews left out)."""
    valence = sentiment[:, quality.POS] - sentiment[:, quality.NEG]
    polar = stars != 3
    agree = np.sign(valence[polar]) == np.sign(stars[polar] - 3)
    neg = stars < 3
    return {
        "sign_accuracy": float(agree.mean()) if agree.size else 0.0,
        "negative_recall": float((valence[neg] < 0).mean()) if neg.any() else 0.0,
        "polar_rows": int(polar.sum()),
    }


def same_item_nn_rate(emb: npt.NDArray[np.float32], items: Sequence[str]) -> float:
    """Share of rows whose nearest other row (cosine) belongs to the same item."""
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    ids = np.unique(np.asarray(items), return_inverse=True)[1]
    hits = 0
    for start in range(0, len(x), 1024):
        sim = x[start : start + 1024] @ x.T
        rows = np.arange(start, min(start + 1024, len(x)))
        sim[rows - start, rows] = -np.inf
        hits += int(np.sum(ids[sim.argmax(1)] == ids[rows]))
    return hits / len(x) if len(x) else 0.0


def _score(
    outs_s: dict[str, npt.NDArray[np.float32]],
    outs_g: dict[str, npt.NDArray[np.float32]],
    sst5: list[Any],
    sst5_test: set[str],
    go: list[Any],
    go_test: set[str],
    thresholds: npt.NDArray[np.float64],
) -> dict[str, Any]:
    s_y = np.array([r.label for r in sst5], dtype=np.int64)
    s_test = np.array([r.text in sst5_test for r in sst5])
    e_y = quality.multi_hot([r.labels for r in go], len(EMOTIONS))
    e_test = np.array([r.text in go_test for r in go])
    p_s, p_e = outs_s["sentiment"], outs_g["emotions"]
    return {
        "sst5_dev_binary_accuracy": quality.binary_accuracy(p_s, s_y),
        "sst5_dev_binary_rows": len(s_y),
        "sst5_dev_test_half_binary_accuracy": quality.binary_accuracy(p_s[s_test], s_y[s_test]),
        "sst5_dev_test_half_rows": int(s_test.sum()),
        "goemotions_dev_macro_f1": quality.macro_f1(p_e, e_y, thresholds),
        "goemotions_dev_test_half_macro_f1": quality.macro_f1(p_e[e_test], e_y[e_test], thresholds),
        "goemotions_dev_test_half_rows": int(e_test.sum()),
    }


def score_model_dir(model_dir: Path, data_dir: Path, seed: int = 13) -> dict[str, Any]:
    """Every held-out figure for the int8 model in ``model_dir`` (one ORT thread)."""
    from tokenizers import Tokenizer

    from export.onnx_model import onnx_predict, ort_session
    from export.train import heldout_halves

    paths = DataPaths(data_dir)
    card = json.loads((model_dir / "card.json").read_text())
    thresholds = np.array([card["thresholds"][e] for e in EMOTIONS])
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    session = ort_session(model_dir / "model.int8.onnx", threads=1)
    sst5 = binary_only(load_sst5(paths.sst5_dev))
    go = load_goemotions(paths.go_dev)
    halves = heldout_halves(paths, seed)
    t = time.perf_counter()
    out = _score(
        onnx_predict(session, tok, [r.text for r in sst5]),
        onnx_predict(session, tok, [r.text for r in go]),
        sst5,
        {r.text for r in halves["sst5"][1]},
        go,
        {r.text for r in halves["goemotions"][1]},
        thresholds,
    )
    phrases = load_sst2(paths.sst2_dev)
    p = onnx_predict(session, tok, [r.text for r in phrases])["sentiment"]
    out["train_distribution_sst2_dev_phrases_accuracy"] = quality.binary_accuracy(
        p, np.array([r.label for r in phrases], dtype=np.int64)
    )
    reviews = load_review_rows(data_dir / REVIEWS)
    r_out = onnx_predict(session, tok, [r[1] for r in reviews])
    stars = np.array([r[2] for r in reviews], dtype=np.int64)
    out["reviews_stars"] = {**stars_agreement(r_out["sentiment"], stars), "rows": len(reviews)}
    out["same_item_nn_rate"] = same_item_nn_rate(r_out["embedding"], [r[0] for r in reviews])
    out["version"] = card["version"]
    out["seconds"] = round(time.perf_counter() - t, 1)
    return out


def base_nn_rate(data_dir: Path) -> float:
    """Same-item nearest-neighbour rate of the untouched base encoder (torch, fp32)."""
    import torch

    from export.onnx_model import MoodModel, base_model_dir, encode_texts, pad_batch
    from export.train import tokenizer_for

    reviews = load_review_rows(data_dir / REVIEWS)
    tok = tokenizer_for(base_model_dir() / "tokenizer.json", 512)
    ids = encode_texts(tok, [r[1] for r in reviews])
    model = MoodModel.from_base(seed=0).eval()
    order = np.argsort([len(i) for i in ids], kind="stable")
    emb = np.zeros((len(ids), model.encoder.config.hidden_size), np.float32)
    with torch.no_grad():
        for start in range(0, len(order), 64):
            idx = order[start : start + 64]
            b = pad_batch([ids[i] for i in idx])
            emb[idx] = model.pooled(
                torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask)
            ).numpy()
    return same_item_nn_rate(emb, [r[0] for r in reviews])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-dir", type=Path, action="append", required=True)
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--base", action="store_true", help="also the base encoder's NN rate")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {str(d): score_model_dir(d, args.data_dir) for d in args.model_dir}
    if args.base:
        result["base_encoder_same_item_nn_rate"] = base_nn_rate(args.data_dir)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
