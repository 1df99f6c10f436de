"""Inference benchmark: texts/s and batch latency of the shipped model, int8 vs fp32, on this CPU.

    .venv/bin/python benchmarks/inference.py [--model-dir DIR] [--fp32 PATH] [--budget-s 420]
    .venv/bin/python benchmarks/inference.py --compare-dir OLD_DIR --compare-only [--budget-s 120]

Texts: real Amazon reviews of 40-80 words ("review", ~60 words) and GoEmotions Reddit comments
("chat", ~12 words) from ../shared/data when present, else deterministic generated texts of the
same lengths; plus the unfiltered, long-tailed reviews for the padding comparison. Each cell times
``model.predict(batch)`` (tokenization included) for a time slice of the budget; the variants of a
cell run back to back so that load from other jobs on the machine hits both alike.
Writes benchmarks/results/inference.json and inference.md. ``--compare-dir`` also times the int8
model of another folder (a previous model version) against ``--model-dir``'s, turn by turn, and
reports new/old texts/s; with ``--compare-only`` that is all it does (inference_compare.json).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import random
import statistics
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stream.adapters.sentiment import BatchPlan, OnnxSentimentModel  # noqa: E402
from stream.settings import DEFAULT_MODEL_DIR  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
REVIEWS_ZIP = (
    DATA / "reviews" / "amazon_musical_instruments_5core" / "Musical_instruments_reviews.csv.zip"
)
CHATS_TSV = DATA / "emotion" / "goemotions" / "dev.tsv"
RESULTS = ROOT / "benchmarks" / "results"
BATCHES = (1, 8, 32, 64)
THREADS = (1, 2)
SEED = 7


# --- texts ---------------------------------------------------------------------------------------

_WORDS = {
    "subject": [
        "the guitar",
        "this tuner",
        "the strings",
        "my new pedal",
        "the cable",
        "the amp",
        "this capo",
        "the stand",
        "the mic",
        "these picks",
    ],
    "verb": ["sounds", "works", "feels", "holds up", "stays in tune", "arrived", "looks", "plays"],
    "judgement": [
        "great",
        "terrible",
        "fine",
        "better than expected",
        "cheap",
        "solid",
        "awful",
        "amazing",
        "okay for the price",
        "really disappointing",
    ],
    "filler": [
        "after a month of daily use",
        "out of the box",
        "for a beginner like me",
        "compared to my old one",
        "at band practice",
        "on stage last night",
        "with heavy gauge strings",
        "when I plug it in",
        "honestly",
        "so far",
    ],
}


def _generated(rng: random.Random, words: int) -> str:
    parts: list[str] = []
    while sum(len(p.split()) for p in parts) < words:
        parts.append(
            f"{rng.choice(_WORDS['subject']).capitalize()} {rng.choice(_WORDS['verb'])} "
            f"{rng.choice(_WORDS['judgement'])} {rng.choice(_WORDS['filler'])}."
        )
    return " ".join(" ".join(parts).split()[:words])


def load_texts(n: int) -> tuple[dict[str, list[str]], str]:
    """(kind -> n texts, source description); real data when present, generated otherwise."""
    rng = random.Random(SEED)
    if REVIEWS_ZIP.is_file() and CHATS_TSV.is_file():
        with zipfile.ZipFile(REVIEWS_ZIP) as z, z.open(z.namelist()[0]) as f:
            rows = csv.DictReader(io.TextIOWrapper(f, encoding="utf-8"))
            reviews = [r["reviewText"] for r in rows if r["reviewText"].strip()]
        chats = [line.split("\t")[0] for line in CHATS_TSV.read_text(encoding="utf-8").splitlines()]
        mid = [t for t in reviews if 40 <= len(t.split()) <= 80]
        kinds = {
            "review": rng.sample(mid, n),
            "chat": rng.sample(chats, n),
            "review-longtail": rng.sample(reviews, n),
        }
        return kinds, "../shared/data (Amazon Musical Instruments reviews, GoEmotions dev)"
    lengths = [max(3, int(rng.lognormvariate(4.0, 0.8))) for _ in range(n)]
    kinds = {
        "review": [_generated(rng, rng.randint(40, 80)) for _ in range(n)],
        "chat": [_generated(rng, rng.randint(6, 18)) for _ in range(n)],
        "review-longtail": [_generated(rng, k) for k in lengths],
    }
    return kinds, "generated (../shared/data absent)"


# --- timing --------------------------------------------------------------------------------------


def time_interleaved(
    predicts: dict[str, Callable[[Sequence[str]], Any]],
    texts: list[str],
    batch: int,
    slice_s: float,
) -> dict[str, list[float]]:
    """Seconds per call of each predict function, taking turns on the same batches.

    Turn-taking call by call means a burst of load from other jobs on the machine hits every
    contender alike, so their ratios hold even when the absolute figures drift.
    """
    for predict in predicts.values():
        predict(texts[:batch])  # warm-up: first run of a shape allocates
    times: dict[str, list[float]] = {name: [] for name in predicts}
    start = 0
    began = time.perf_counter()
    rounds = 0
    while rounds < 3 or (time.perf_counter() - began < slice_s and rounds < 400):
        if start + batch > len(texts):
            start = 0
        chunk = texts[start : start + batch]
        start += batch
        for name, predict in predicts.items():
            t = time.perf_counter()
            predict(chunk)
            times[name].append(time.perf_counter() - t)
        rounds += 1
    return times


def tokenize_seconds(model: OnnxSentimentModel, texts: list[str], batch: int, count: int) -> float:
    total = 0.0
    for i in range(count):
        chunk = texts[(i * batch) % max(1, len(texts) - batch) :][:batch]
        t = time.perf_counter()
        model.tokenize(chunk)
        total += time.perf_counter() - t
    return total


def summary(
    model: OnnxSentimentModel, texts: list[str], batch: int, times: list[float]
) -> dict[str, Any]:
    tok = tokenize_seconds(model, texts, batch, len(times))
    ms = np.array(times) * 1e3
    return {
        "texts_per_s": round(batch * len(times) / sum(times), 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "batches": len(times),
        "tokenize_share": round(tok / sum(times), 4),
    }


def padding_comparison(
    model: OnnxSentimentModel, texts: list[str], batch: int, slice_s: float
) -> list[dict[str, Any]]:
    """The same long-tailed batches padded three ways (the reason predict() sorts by length)."""
    plans = {
        "arrival order, pad to longest": BatchPlan(max_texts=batch, sort=False),
        "sorted, one call": BatchPlan(max_texts=batch, max_tokens=1 << 30, call_cost=1e12),
        "sorted + cut (default plan)": model.plan,
    }
    predicts = {name: model.with_plan(plan).predict for name, plan in plans.items()}
    times = time_interleaved(predicts, texts, batch, slice_s)
    return [
        {
            "strategy": name,
            "batch": batch,
            "batches": len(ts),
            "texts_per_s": round(batch * len(ts) / sum(ts), 1),
        }
        for name, ts in times.items()
    ]


def spin_comparison(
    model_dir: Path, threads: int, texts: list[str], batch: int, slice_s: float
) -> list[dict[str, Any]]:
    """int8 with ONNX Runtime's idle threads busy-waiting (its default) or sleeping (ours)."""
    predicts = {
        f"spinning on, {threads} threads": OnnxSentimentModel.load(
            model_dir, variant="int8", providers="cpu", intra_op_threads=threads, spin=True
        ).predict,
        f"spinning off, {threads} threads (default)": OnnxSentimentModel.load(
            model_dir, variant="int8", providers="cpu", intra_op_threads=threads
        ).predict,
    }
    times = time_interleaved(predicts, texts, batch, slice_s)
    return [
        {
            "setting": name,
            "batch": batch,
            "batches": len(ts),
            "texts_per_s": round(batch * len(ts) / sum(ts), 1),
        }
        for name, ts in times.items()
    ]


def model_comparison(
    new_dir: Path, old_dir: Path, texts: dict[str, list[str]], threads: list[int], slice_s: float
) -> list[dict[str, Any]]:
    """int8 of two model folders, same texts, taking turns call by call (batch 32)."""
    rows = []
    for kind in ("review", "chat"):
        for t in threads:
            predicts = {
                name: OnnxSentimentModel.load(
                    d, variant="int8", providers="cpu", intra_op_threads=t
                ).predict
                for name, d in (("new", new_dir), ("old", old_dir))
            }
            times = time_interleaved(predicts, texts[kind], 32, slice_s)
            rate = {name: 32 * len(ts) / sum(ts) for name, ts in times.items()}
            rows.append(
                {
                    "kind": kind,
                    "threads": t,
                    "batch": 32,
                    "new_texts_per_s": round(rate["new"], 1),
                    "old_texts_per_s": round(rate["old"], 1),
                    "new_over_old": round(rate["new"] / rate["old"], 3),
                }
            )
            print(rows[-1], flush=True)
    return rows


# --- report --------------------------------------------------------------------------------------


def find_fp32(explicit: str | None, model_dir: Path) -> Path | None:
    if explicit:
        return Path(explicit)
    candidates = [ROOT / "build" / "model" / "model.fp32.onnx", model_dir / "model.fp32.onnx"]
    candidates += sorted(
        (ROOT / "build" / "model").glob("*/onnx/model.fp32.onnx"),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    return next((p for p in candidates if p.is_file()), None)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Inference benchmark",
        "",
        f"Model `{report['model']['name']}` {report['model']['version']} on "
        f"{report['machine']['cpu']} ({report['machine']['cores']} cores), ONNX Runtime "
        f"{report['machine']['onnxruntime']}, provider {report['model']['provider']}. "
        f"Load average {report['machine']['load_before']} before, "
        f"{report['machine']['load_after']} after (other jobs share these cores: figures are "
        "noisy; contenders of a row took turns call by call, so their ratios are the robust part).",
        f"Texts: {report['texts']['source']}; "
        + ", ".join(
            f"{k}: median {v['words_median']} words / {v['tokens_median']} tokens"
            for k, v in report["texts"]["kinds"].items()
        )
        + ".",
        "",
        "| texts | threads | batch | int8 texts/s | fp32 texts/s | int8/fp32 | int8 p50 ms | "
        "int8 p99 ms | fp32 p50 ms | fp32 p99 ms | tokenize share (int8) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        i8, f32 = row.get("int8", {}), row.get("fp32", {})
        ratio = f"{i8['texts_per_s'] / f32['texts_per_s']:.2f}x" if i8 and f32 else "-"
        cells = [
            row["kind"],
            row["threads"],
            row["batch"],
            i8.get("texts_per_s", "-"),
            f32.get("texts_per_s", "-"),
            ratio,
            i8.get("p50_ms", "-"),
            i8.get("p99_ms", "-"),
            f32.get("p50_ms", "-"),
            f32.get("p99_ms", "-"),
            f"{100 * i8['tokenize_share']:.1f}%" if i8 else "-",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if report.get("padding"):
        lines += [
            "",
            "Padding strategy on the long-tailed reviews (int8, most threads):",
            "",
            "| strategy | batch | texts/s |",
            "|---|---|---|",
        ]
        for row in report["padding"]:
            lines.append(f"| {row['strategy']} | {row['batch']} | {row['texts_per_s']} |")
    if report.get("spinning"):
        lines += [
            "",
            "ONNX Runtime thread spinning (int8, review texts):",
            "",
            "| setting | batch | texts/s |",
            "|---|---|---|",
        ]
        for row in report["spinning"]:
            lines.append(f"| {row['setting']} | {row['batch']} | {row['texts_per_s']} |")
    lines += ["", "Targets:", ""]
    for name, value in report["targets"].items():
        lines.append(f"- {name}: {value}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default=str(DEFAULT_MODEL_DIR))
    parser.add_argument("--fp32", help="fp32 ONNX of the same graph (default: look in build/model)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="total timing budget")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--threads", default=",".join(map(str, THREADS)))
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--compare-dir", help="another model folder: time its int8 against ours")
    parser.add_argument("--compare-only", action="store_true", help="only the --compare-dir run")
    args = parser.parse_args(argv)

    batches = [int(b) for b in args.batches.split(",")]
    threads = [int(t) for t in args.threads.split(",")]
    model_dir = Path(args.model_dir)
    fp32 = find_fp32(args.fp32, model_dir)
    texts, source = load_texts(max(batches) * 8)
    load_before = os.getloadavg()[0]
    comparison = None
    if args.compare_dir:
        share = 1.0 if args.compare_only else 0.2
        comparison = model_comparison(
            model_dir, Path(args.compare_dir), texts, threads, args.budget_s * share / 4
        )
        if args.compare_only:
            out = Path(args.out)
            out.mkdir(parents=True, exist_ok=True)
            doc = {
                "new": str(model_dir),
                "old": args.compare_dir,
                "load_before": round(load_before, 2),
                "load_after": round(os.getloadavg()[0], 2),
                "texts": source,
                "results": comparison,
            }
            (out / "inference_compare.json").write_text(json.dumps(doc, indent=2) + "\n")
            print(f"wrote {out / 'inference_compare.json'}")
            return 0
        args.budget_s *= 0.8

    models: dict[tuple[str, int], OnnxSentimentModel] = {}
    for t in threads:
        models["int8", t] = OnnxSentimentModel.load(
            model_dir, variant="int8", providers="cpu", intra_op_threads=t
        )
        if fp32 is not None:
            models["fp32", t] = OnnxSentimentModel.load(
                model_dir, variant="fp32", providers="cpu", intra_op_threads=t, model_path=fp32
            )
    variants = ["int8"] + (["fp32"] if fp32 is not None else [])
    probe = models["int8", threads[0]]
    kinds = {}
    for kind, items in texts.items():
        lengths = [len(e.ids) for e in probe.tokenize(items)]
        kinds[kind] = {
            "words_median": int(statistics.median(len(t.split()) for t in items)),
            "tokens_median": int(statistics.median(lengths)),
            "tokens_p90": int(np.percentile(lengths, 90)),
            "truncated_share": round(
                float(np.mean([n >= probe.card.max_length for n in lengths])), 3
            ),
        }

    grid = [(k, t, b) for k in ("review", "chat") for t in threads for b in batches]
    padding_share, spin_share = 0.1, 0.06
    slice_s = args.budget_s * (1 - padding_share - spin_share) / len(grid)
    results = []
    print(f"model {probe.name} {probe.version}; fp32: {fp32}; texts: {source}")
    print(
        f"{'texts':7} {'thr':>3} {'batch':>5} | "
        + " | ".join(f"{v:>4} texts/s  p50 ms  p99 ms  tok%" for v in variants)
    )
    for kind, t, b in grid:
        row: dict[str, Any] = {"kind": kind, "threads": t, "batch": b}
        predicts = {v: models[v, t].predict for v in variants}
        times = time_interleaved(predicts, texts[kind], b, slice_s)
        for v in variants:
            row[v] = summary(models[v, t], texts[kind], b, times[v])
        results.append(row)
        print(
            f"{kind:7} {t:>3} {b:>5} | "
            + " | ".join(
                f"{row[v]['texts_per_s']:>12} {row[v]['p50_ms']:>7} {row[v]['p99_ms']:>7} "
                f"{100 * row[v]['tokenize_share']:>5.1f}"
                for v in variants
            ),
            flush=True,
        )

    spinning = spin_comparison(
        model_dir, max(threads), texts["review"], 32, args.budget_s * spin_share
    )
    for row in spinning:
        print(row)
    padding = padding_comparison(
        models["int8", max(threads)],
        texts["review-longtail"],
        32,
        args.budget_s * padding_share,
    )
    for row in padding:
        print(row)

    def ratio(kind: str, t: int, b: int) -> float | None:
        row = next(
            (r for r in results if (r["kind"], r["threads"], r["batch"]) == (kind, t, b)), None
        )
        if row is None or "fp32" not in row:
            return None
        return round(row["int8"]["texts_per_s"] / row["fp32"]["texts_per_s"], 2)

    targets = {}
    for t in threads:
        r = ratio("review", t, 32)
        targets[f"int8 >= 1.5x fp32, review, batch 32, {t} thread(s)"] = (
            "not measured (needs --fp32 and batch 32)"
            if r is None
            else f"{r}x -> {'met' if r >= 1.5 else 'MISSED'}"
        )
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "onnxruntime": ort.__version__,
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
        },
        "model": {
            "name": probe.name,
            "version": probe.version,
            "dir": str(model_dir),
            "provider": probe.provider,
            "fp32": str(fp32) if fp32 else None,
        },
        "texts": {"source": source, "kinds": kinds},
        "slice_s": round(slice_s, 2),
        "results": results,
        "padding": padding,
        "spinning": spinning,
        "targets": targets,
        "int8_new_vs_old": comparison,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "inference.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "inference.md").write_text(markdown(report), encoding="utf-8")
    for name, value in targets.items():
        print(f"{name}: {value}")
    print(f"wrote {out / 'inference.json'} and {out / 'inference.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
