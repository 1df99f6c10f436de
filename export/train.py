"""Multi-task fine-tuning of MiniLM: sentiment (3-way softmax) and emotions (28 sigmoids).

Sentiment and emotion batches are interleaved in a seeded order; batches are length-bucketed so the
two CPU cores do not burn time on padding. Every ``checkpoint_every`` steps the full training state
is saved so ``--resume`` continues the same run bit-for-bit in schedule (seed-derived batches).

Selection never leaks: the SST-2 file is a split of GLUE's training *phrases* (parts of one sentence
sit on both sides), so checkpoints are chosen and training stops on sentence-level data only: a
seeded "select" half of ``sst5/dev.txt`` binarised and of GoEmotions dev. The other "test" halves
are scored once at the end (held-out). Per-emotion thresholds are tuned on a seeded share of the
GoEmotions training file. The phrase split is reported only as "train-distribution".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import platform
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from tokenizers import Tokenizer
from torch import nn

from export import quality
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
    split_rows,
)
from export.onnx_model import MoodModel, base_model_dir, pad_batch
from stream.errors import ConfigError
from stream.ports import EMOTIONS, SENTIMENTS

log = logging.getLogger("moodstream.export.train")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that shapes a run; stored in checkpoints and the model card."""

    seed: int = 13
    val_fraction: float = 0.05
    epochs: float = 1.25
    batch_size: int = 32
    max_length: int = 128
    lr_encoder: float = 5e-5
    lr_heads: float = 1e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    emotion_weight: float = 1.0
    # Keep the pooled embedding near the base encoder's (1 - cosine to a frozen copy): the stream
    # uses it for item search, so it should stay topical rather than collapse onto sentiment.
    distill_weight: float = 2.0
    neutral_weight_power: float = 0.5  # class weight = (mean count / class count) ** power
    sst2_fraction: float = 1.0  # subsample SST-2 training rows (phrases) to fit the time budget
    sst2_rows: int = 0  # >0: a class-balanced sample of this many phrases (replaces the fraction)
    min_phrase_words: int = 1  # phrases shorter than this are dropped (single words add little)
    sst5_repeat: int = 1  # SST-5 training sentences appear this many times per epoch
    lr_schedule: str = "linear"  # after warmup: "linear" or "cosine" decay to 0
    emotion_fraction: float = 1.0  # seeded share of GoEmotions training rows used per run
    init_from: str = ""  # warm start: a shipped model folder (fp16 ONNX) or a state dict .pt
    eval_every: int = 0  # >0: score the select halves every this many steps, keep the best
    patience: int = 0  # >0: stop after this many evaluations without improvement
    freeze_word_embeddings: bool = True  # keeps the 11.7M-row embedding out of AdamW: faster
    max_steps: int = 0  # 0 = the full schedule; >0 stops early (throughput probes)
    checkpoint_every: int = 200
    threads: int = 2


# Runtime knobs a resumed run may change. ``epochs`` re-stretches the LR decay from the resume
# step on (the batch order of the epochs already planned is unchanged); the card records it.
RESUMABLE_CHANGES = frozenset({"threads", "checkpoint_every", "epochs"})


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    return {
        k: [old.get(k), new.get(k)] for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)
    }


def tokenizer_for(path: Path, max_length: int) -> Tokenizer:
    """The base tokenizer with its baked-in pad-to-128 removed and truncation set explicitly."""
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.enable_truncation(max_length)
    return tok


def encode(tok: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch(list(texts))]


@dataclass
class Splits:
    sent_train: list[SentimentRow]
    sent_val: list[SentimentRow]  # SST-2 phrases carved from train.tsv: train-distribution only
    emo_train: list[EmotionRow]
    emo_val: list[EmotionRow]  # carved from GoEmotions train: threshold tuning
    sst2_val_n: int
    files: dict[str, dict[str, object]]
    sent_select: list[SentimentRow] = dataclasses.field(default_factory=list)
    emo_select: list[EmotionRow] = dataclasses.field(default_factory=list)


def load_splits(paths: DataPaths, cfg: TrainConfig) -> Splits:
    """Training rows, the tuning split and the sentence-level *select* halves of the dev files.

    All SST-5 training sentences train (``sst5_repeat`` times per epoch); validation for
    selection comes from the dev files' select halves, never from the phrase split.
    """
    paths.check()
    sst2 = load_sst2(paths.sst2_train)
    sst5 = load_sst5(paths.sst5_train)
    go = load_goemotions(paths.go_train, paths.go_labels)
    sst2_tr, sst2_va = split_rows(sst2, cfg.val_fraction, cfg.seed)
    go_tr, go_va = split_rows(go, cfg.val_fraction, cfg.seed + 2)
    if cfg.emotion_fraction < 1.0:
        go_tr = random.Random(cfg.seed + 4).sample(go_tr, round(len(go_tr) * cfg.emotion_fraction))
    if cfg.sst2_rows > 0 or cfg.min_phrase_words > 1:
        sst2_tr = balanced_phrases(sst2_tr, cfg.sst2_rows, cfg.seed + 3, cfg.min_phrase_words)
    elif cfg.sst2_fraction < 1.0:
        sst2_tr = random.Random(cfg.seed + 3).sample(
            sst2_tr, round(len(sst2_tr) * cfg.sst2_fraction)
        )
    sent_select, _ = heldout_halves(paths, cfg.seed)["sst5"]
    emo_select, _ = heldout_halves(paths, cfg.seed)["goemotions"]
    files = {
        "sst2_train": fingerprint(paths.sst2_train, len(sst2)),
        "sst5_train": fingerprint(paths.sst5_train, len(sst5)),
        "goemotions_train": fingerprint(paths.go_train, len(go)),
    }
    files["sst2_train"]["used_for_training"] = len(sst2_tr)
    files["sst5_train"]["used_for_training"] = len(sst5) * max(1, cfg.sst5_repeat)
    return Splits(
        sst2_tr + sst5 * max(1, cfg.sst5_repeat),
        sst2_va,
        go_tr,
        go_va,
        len(sst2_va),
        files,
        sent_select,
        emo_select,
    )


HALF_SEEDS = {"sst5": 101, "goemotions": 102}


def heldout_halves(paths: DataPaths, seed: int) -> dict[str, tuple[list[Any], list[Any]]]:
    """(select, test) halves of sst5/dev.txt binarised and of GoEmotions dev (seeded)."""
    return {
        "sst5": dev_halves(binary_only(load_sst5(paths.sst5_dev)), seed + HALF_SEEDS["sst5"]),
        "goemotions": dev_halves(load_goemotions(paths.go_dev), seed + HALF_SEEDS["goemotions"]),
    }


def schedule(
    sent_len: Sequence[int], emo_len: Sequence[int], cfg: TrainConfig
) -> list[tuple[str, list[int]]]:
    """The whole run's ordered (task, row indices) list; a pure function of the seed."""
    steps: list[tuple[str, list[int]]] = []
    for epoch in range(math.ceil(cfg.epochs)):
        s = length_batches(sent_len, cfg.batch_size, cfg.seed * 1000 + 2 * epoch)
        e = length_batches(emo_len, cfg.batch_size, cfg.seed * 1000 + 2 * epoch + 1)
        tags = ["s"] * len(s) + ["e"] * len(e)
        random.Random(cfg.seed * 7919 + epoch).shuffle(tags)
        si = ei = 0
        part: list[tuple[str, list[int]]] = []
        for tag in tags:
            if tag == "s":
                part.append(("s", s[si]))
                si += 1
            else:
                part.append(("e", e[ei]))
                ei += 1
        share = min(1.0, cfg.epochs - epoch)
        steps.extend(part[: round(len(part) * share)])
    return steps[: cfg.max_steps] if cfg.max_steps > 0 else steps


def class_weights(labels: Sequence[int], power: float) -> torch.Tensor:
    counts = np.bincount(np.asarray(labels), minlength=len(SENTIMENTS)).astype(np.float64)
    w = (counts.mean() / np.maximum(counts, 1.0)) ** power
    return torch.tensor(w / (w * counts).sum() * counts.sum(), dtype=torch.float32)


def make_optimizer(model: MoodModel, cfg: TrainConfig, total: int) -> tuple[Any, Any]:
    if cfg.freeze_word_embeddings:
        model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
    enc_decay, enc_plain, heads = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith(("sentiment_head", "emotion_head")):
            heads.append(p)
        elif p.ndim < 2:
            enc_plain.append(p)
        else:
            enc_decay.append(p)
    opt = torch.optim.AdamW(
        [
            {"params": enc_decay, "lr": cfg.lr_encoder, "weight_decay": cfg.weight_decay},
            {"params": enc_plain, "lr": cfg.lr_encoder, "weight_decay": 0.0},
            {"params": heads, "lr": cfg.lr_heads, "weight_decay": cfg.weight_decay},
        ]
    )
    warm = max(1, round(total * cfg.warmup_fraction))
    if cfg.lr_schedule not in ("linear", "cosine"):
        raise ConfigError(f"lr_schedule must be linear or cosine, got {cfg.lr_schedule!r}")

    def factor(step: int) -> float:
        return lr_factor(step, total, warm, cfg.lr_schedule)

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def lr_factor(step: int, total: int, warm: int, kind: str = "linear") -> float:
    """Linear warmup to 1 over ``warm`` steps, then linear or cosine decay to 0 at ``total``."""
    if step < warm:
        return (step + 1) / warm
    done = min(1.0, (step - warm) / max(1, total - warm))
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * done))
    return max(0.0, 1.0 - done)


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


def _save(path: Path, state: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


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


def train(
    data_dir: Path,
    out_dir: Path,
    cfg: TrainConfig,
    resume: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train, tune thresholds, score validation + held-out; write final.pt and result.json."""
    torch.set_num_threads(cfg.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = DataPaths(data_dir)
    splits = load_splits(paths, cfg)
    tok = tokenizer_for(base_model_dir() / "tokenizer.json", cfg.max_length)
    sent_ids = encode(tok, [r.text for r in splits.sent_train])
    emo_ids = encode(tok, [r.text for r in splits.emo_train])
    sent_y = torch.tensor([r.label for r in splits.sent_train])
    emo_y = torch.from_numpy(quality.multi_hot([r.labels for r in splits.emo_train], len(EMOTIONS)))
    plan = schedule([len(i) for i in sent_ids], [len(i) for i in emo_ids], cfg)
    log.info(
        "rows: sentiment %d (+%d val), emotion %d (+%d val); steps %d",
        len(sent_ids),
        len(splits.sent_val),
        len(emo_ids),
        len(splits.emo_val),
        len(plan),
    )

    model = MoodModel.from_base(seed=cfg.seed)
    if cfg.init_from:
        from export.warm_start import load_warm_start

        load_warm_start(model, Path(cfg.init_from))
        log.info("warm start from %s", cfg.init_from)
    teacher = MoodModel.from_base(seed=cfg.seed).eval() if cfg.distill_weight > 0 else None
    if teacher is not None:
        teacher.requires_grad_(False)
    opt, sched = make_optimizer(model, cfg, len(plan))
    ce = nn.CrossEntropyLoss(
        weight=class_weights([r.label for r in splits.sent_train], cfg.neutral_weight_power)
    )
    bce = nn.BCEWithLogitsLoss(reduction="none")
    ckpt = out_dir / "checkpoint.pt"
    start, wall_before = 0, 0.0
    resumes: list[dict[str, Any]] = []
    evals: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": -1.0, "step": 0}
    stopped_early = False
    config_json = json.dumps(dataclasses.asdict(cfg), sort_keys=True)
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        changes = config_changes(json.loads(state["config"]), dataclasses.asdict(cfg))
        if set(changes) - RESUMABLE_CHANGES:
            raise ConfigError(
                f"{ckpt} was written with another config ({', '.join(sorted(changes))}); "
                "start without --resume"
            )
        resumes = [*state.get("resumes", []), {"step": int(state["step"]), "changes": changes}]
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])
        start, wall_before = int(state["step"]), float(state["wall_s"])
        evals = [e for e in state.get("evals", []) if e["step"] <= start]
        best = dict(state.get("best", best))
        log.info("resumed at step %d", start)
    elif not resume:
        (out_dir / "steps.tsv").write_text("step\ttask\tbatch\tseq\tseconds\tloss\n")

    sel_texts_s = [r.text for r in splits.sent_select]
    sel_y_s = np.array([r.label for r in splits.sent_select], dtype=np.int64)
    sel_texts_e = [r.text for r in splits.emo_select]
    sel_y_e = quality.multi_hot([r.labels for r in splits.emo_select], len(EMOTIONS))
    best_path = out_dir / "best.pt"

    def select_eval(step: int) -> bool:
        """Score the select halves; keep the best weights; True when patience ran out."""
        te = time.perf_counter()
        sp, _ = predict(model, tok, sel_texts_s)
        _, ep = predict(model, tok, sel_texts_e)
        model.train()
        row = {"step": step, **selection_score(sp, sel_y_s, ep, sel_y_e)}
        row["seconds"] = round(time.perf_counter() - te, 1)
        evals.append(row)
        if row["score"] > best["score"]:
            best.update(score=row["score"], step=step)
            torch.save(model.state_dict(), best_path)
        log.info("eval %s (best at step %d)", json.dumps(row), best["step"])
        since = sum(1 for e in evals if e["step"] > best["step"])
        return cfg.patience > 0 and since >= cfg.patience

    t0 = time.perf_counter()
    if cfg.eval_every > 0 and start == 0:
        select_eval(0)  # the starting point (a warm start's weights) competes too
    model.train()
    with (out_dir / "steps.tsv").open("a") as steps_log:
        for step in range(start, len(plan)):
            ts = time.perf_counter()
            task, idx = plan[step]
            ids = emo_ids if task == "e" else sent_ids
            b = pad_batch([ids[i] for i in idx])
            s_logits, e_logits, pooled = model(
                torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask)
            )
            if task == "s":
                loss = ce(s_logits, sent_y[idx])
            else:
                target = emo_y[idx].float()
                loss = cfg.emotion_weight * bce(e_logits, target).sum(1).mean()
            if teacher is not None:
                with torch.no_grad():
                    ref = teacher.pooled(
                        torch.from_numpy(b.input_ids), torch.from_numpy(b.attention_mask)
                    )
                cos = nn.functional.cosine_similarity(pooled, ref, dim=-1)
                loss = loss + cfg.distill_weight * (1.0 - cos).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            dt = time.perf_counter() - ts
            steps_log.write(
                f"{step}\t{task}\t{len(idx)}\t{b.input_ids.shape[1]}\t{dt:.4f}\t{loss.item():.4f}\n"
            )
            if progress:
                progress(step + 1, len(plan), float(loss.item()))
            last = step + 1 == len(plan)
            if cfg.eval_every > 0 and ((step + 1) % cfg.eval_every == 0 or last):
                steps_log.flush()
                stopped_early = select_eval(step + 1) and not last
            if (step + 1) % cfg.checkpoint_every == 0 or last or stopped_early:
                steps_log.flush()
                _save(
                    ckpt,
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "rng": torch.get_rng_state(),
                        "step": step + 1,
                        "config": config_json,
                        "resumes": resumes,
                        "evals": evals,
                        "best": best,
                        "wall_s": wall_before + time.perf_counter() - t0,
                    },
                )
            if stopped_early:
                log.info("early stop at step %d: no gain for %d evals", step + 1, cfg.patience)
                break
    train_wall = wall_before + time.perf_counter() - t0
    if cfg.eval_every > 0 and best_path.is_file():
        model.load_state_dict(torch.load(best_path, weights_only=True))
    model.eval()
    torch.save(model.state_dict(), out_dir / "final.pt")

    t_eval = time.perf_counter()
    # Tuning split (GoEmotions train share): thresholds are tuned here, and only here.
    _, ev_p = predict(model, tok, [r.text for r in splits.emo_val])
    ev_y = quality.multi_hot([r.labels for r in splits.emo_val], len(EMOTIONS))
    thresholds = quality.tune_thresholds(ev_p, ev_y)
    sv_p, _ = predict(model, tok, [r.text for r in splits.sent_val])
    sv_y = np.array([r.label for r in splits.sent_val])
    validation = evaluate(sv_p, sv_y, np.ones(len(sv_y), bool), ev_p, ev_y, thresholds)
    validation["note"] = "SST-2 phrases carved from train.tsv + GoEmotions train share"

    predict_fn: Callable[[Sequence[str]], Any] = lambda texts: predict(model, tok, texts)  # noqa: E731
    heldout = heldout_metrics(paths, predict_fn, thresholds, cfg.seed)
    result = {
        "thresholds": {n: float(t) for n, t in zip(EMOTIONS, thresholds, strict=True)},
        "metrics": {
            "validation": {
                "step": best["step"],
                **{
                    k: v
                    for e in evals
                    if e["step"] == best["step"]
                    for k, v in e.items()
                    if k != "step"
                },
                "sst5_dev_select_rows": len(splits.sent_select),
                "goemotions_dev_select_rows": len(splits.emo_select),
                "note": "select halves; goemotions F1 here uses thresholds tuned on these rows",
            },
            "heldout": heldout,
            "selection": {
                "best_step": best["step"],
                "best_score": best["score"],
                "evals": evals,
                "stopped_early": stopped_early,
            },
            "train_distribution": {
                "validation": validation,
                "sst2_dev_phrases_accuracy": train_distribution_sst2(paths, predict_fn),
            },
        },
        "training": {
            "data": splits.files,
            "split": {
                "method": "seeded shuffle of each training file; dev files cut into seeded halves",
                "fraction": cfg.val_fraction,
                "seeds": {
                    "sst2": cfg.seed,
                    "goemotions": cfg.seed + 2,
                    "phrase_sample": cfg.seed + 3,
                    "sst5_dev_halves": cfg.seed + HALF_SEEDS["sst5"],
                    "goemotions_dev_halves": cfg.seed + HALF_SEEDS["goemotions"],
                },
                "rows": {
                    "sentiment_train": len(splits.sent_train),
                    "sst2_phrase_validation": len(splits.sent_val),
                    "emotion_train": len(splits.emo_train),
                    "emotion_threshold_tuning": len(splits.emo_val),
                    "sst5_dev_select": len(splits.sent_select),
                    "goemotions_dev_select": len(splits.emo_select),
                },
            },
            "config": dataclasses.asdict(cfg),
            "warm_start": warm_start_info(cfg.init_from),
            "seed": cfg.seed,
            "epochs": cfg.epochs,
            "steps": len(plan),
            "steps_run": evals[-1]["step"] if stopped_early and evals else len(plan),
            "resumes": resumes,
            "wall_time_s": round(train_wall, 1),
            "eval_time_s": round(time.perf_counter() - t_eval, 1),
            "torch": torch.__version__,
            "cpu": f"{platform.processor() or platform.machine()}, {cfg.threads} threads",
        },
    }
    (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def warm_start_info(source: str) -> dict[str, Any] | None:
    """Which weights a warm-started run began from (the folder's card version and data)."""
    if not source:
        return None
    card = Path(source) / "card.json"
    if not card.is_file():
        return {"path": source}
    prev = json.loads(card.read_text())
    return {
        "path": source,
        "version": prev.get("version"),
        "its_training_data": prev.get("training", {}).get("data"),
        "its_config": prev.get("training", {}).get("config"),
    }


def train_distribution_sst2(
    paths: DataPaths,
    predict_fn: Callable[[Sequence[str]], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]],
) -> dict[str, Any]:
    """``sst2/dev.tsv``: GLUE training phrases, so it overlaps training sentences (optimistic)."""
    rows = load_sst2(paths.sst2_dev)
    probs, _ = predict_fn([r.text for r in rows])
    gold = np.array([r.label for r in rows], dtype=np.int64)
    return {"accuracy": quality.binary_accuracy(probs, gold), "rows": len(rows)}


def heldout_metrics(
    paths: DataPaths,
    predict_fn: Callable[[Sequence[str]], tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]],
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
