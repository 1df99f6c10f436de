"""ONNX Runtime adapter of ``stream.ports.SentimentModel``: the shipped MiniLM model + its card.

Loading checks the artifact against its card (file hashes, label order, graph inputs/outputs) so a
corrupt or mismatched model fails at start-up with one line instead of scoring garbage. ``predict``
sorts a batch by token length and runs it in sub-batches of similar length: padding every text to
the longest of an arrival-order batch wasted two thirds of the CPU time on real traffic.

Empty texts (nothing but special tokens after tokenizing: ``""``, whitespace, stripped control
characters) never reach the model: they get ``EMPTY_SENTIMENT`` (neutral, low confidence), emotion
"neutral" at 0.5 and a zero embedding, so they carry no taste or emotion evidence downstream.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from tokenizers import Encoding, Tokenizer

from stream.core.labels import emotion_thresholds
from stream.errors import ConfigError, ModelError
from stream.ports import EMOTIONS, SENTIMENTS, Scores, SentimentModel
from stream.settings import Settings

log = logging.getLogger(__name__)

VARIANT_FILES: dict[str, str] = {
    "int8": "model.int8.onnx",
    "fp16": "model.fp16.onnx",
    "fp32": "model.fp32.onnx",
}
GPU_PROVIDERS: tuple[str, ...] = ("TensorrtExecutionProvider", "CUDAExecutionProvider")
CPU_PROVIDER = "CPUExecutionProvider"
PROVIDER_ALIASES: dict[str, str] = {
    "cpu": CPU_PROVIDER,
    "cuda": "CUDAExecutionProvider",
    "gpu": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
}
OUTPUTS: tuple[str, ...] = ("sentiment", "emotions", "embedding")
EMPTY_SENTIMENT: tuple[float, float, float] = (0.25, 0.5, 0.25)
EMPTY_NEUTRAL_EMOTION = 0.5


@dataclass(frozen=True)
class BatchPlan:
    """How ``predict`` cuts a length-sorted batch into model calls.

    ``call_cost`` is the fixed cost of one ``session.run`` expressed in tokens: a cut is made where
    the padding it saves outweighs one more call. ``max_texts``/``max_tokens`` bound memory.
    """

    max_texts: int = 64
    max_tokens: int = 8192
    call_cost: float = 8.0
    sort: bool = True  # False: arrival order in chunks of max_texts (the baseline benchmarked)

    def cut(self, lengths: Sequence[int]) -> list[tuple[int, int]]:
        """Optimal contiguous split of ascending ``lengths`` into ``[start, end)`` chunks.

        Cost of a chunk = call_cost + count * longest * (1 + longest / 512): padded tokens, with a
        per-token cost growing with length (attention; measured +30% at 128 vs 16 tokens on CPU).
        Exact DP, O(n * max_texts).
        """
        n = len(lengths)
        if not self.sort:
            return [(i, min(i + self.max_texts, n)) for i in range(0, n, self.max_texts)]
        best = [0.0] + [float("inf")] * n
        start_of = [0] * (n + 1)
        for end in range(1, n + 1):
            longest = lengths[end - 1]
            per_text = longest * (1.0 + longest / 512.0)
            for start in range(end - 1, max(-1, end - 1 - self.max_texts), -1):
                count = end - start
                if count > 1 and count * longest > self.max_tokens:
                    break
                cost = best[start] + self.call_cost + count * per_text
                if cost < best[end]:
                    best[end] = cost
                    start_of[end] = start
        chunks: list[tuple[int, int]] = []
        end = n
        while end > 0:
            chunks.append((start_of[end], end))
            end = start_of[end]
        return chunks[::-1]


# CPU: a session run costs ~0.1-0.3 ms, about as much as a few tokens (long-tailed reviews on 2
# cores: call_cost 2-8 ~10% faster than 32, 256 ~15% slower). GPU: a run costs ~1-2 ms of kernel
# launches, worth thousands of tokens, so GPU batches stay whole unless lengths differ wildly.
CPU_PLAN = BatchPlan(max_texts=64, max_tokens=8192, call_cost=8.0)
GPU_PLAN = BatchPlan(max_texts=256, max_tokens=65536, call_cost=4096.0)
# Dynamic int8 quantizes activations with one scale per call, so a text's scores depended on
# the texts it shared a call with (valence up to 0.12 apart; a replay then did not reproduce
# live state). One text per call makes them depend on the text alone, at the same speed on
# these CPUs (256 reviews, 1 thread: 137.8 texts/s vs 136.6 batched: padding is gone too).
PER_TEXT_PLAN = BatchPlan(max_texts=1, max_tokens=1 << 30, call_cost=0.0)


def default_plan(provider: str, variant: str) -> BatchPlan:
    if variant == "int8":
        return PER_TEXT_PLAN
    return CPU_PLAN if provider == CPU_PROVIDER else GPU_PLAN


@dataclass(frozen=True)
class ModelCard:
    """The parts of ``card.json`` the runtime relies on."""

    name: str
    version: str
    max_length: int
    embedding_dim: int
    thresholds: npt.NDArray[np.float32]  # per emotion, EMOTIONS order
    files: Mapping[str, Mapping[str, Any]]
    raw: Mapping[str, Any]

    @classmethod
    def load(cls, model_dir: Path) -> ModelCard:
        path = model_dir / "card.json"
        if not model_dir.is_dir():
            raise ModelError(f"model folder {model_dir} does not exist")
        if not path.is_file():
            raise ModelError(f"{path} is missing: not a moodstream model folder")
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            labels = raw["labels"]
            if list(labels["sentiment"]) != list(SENTIMENTS):
                raise ModelError(f"{path}: sentiment labels {labels['sentiment']} != {SENTIMENTS}")
            if list(labels["emotions"]) != list(EMOTIONS):
                raise ModelError(f"{path}: emotion labels differ from stream.ports.EMOTIONS")
            thresholds = raw.get("thresholds", 0.5)
            if isinstance(thresholds, Mapping) and "emotion" in thresholds:
                thresholds = thresholds["emotion"]  # one threshold for every emotion
            return cls(
                name=str(raw["name"]),
                version=str(raw["version"]),
                max_length=int(raw["max_length"]),
                embedding_dim=int(raw["embedding_dim"]),
                thresholds=emotion_thresholds(thresholds),
                files=dict(raw["files"]),
                raw=raw,
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path} is unreadable or incomplete: {exc!r}") from exc

    def verify(self, path: Path) -> None:
        """Check size and sha256 of one artifact file against the card (~30 ms for 23 MB)."""
        entry = self.files.get(path.name)
        if entry is None:
            raise ModelError(f"card.json lists no hash for {path.name}")
        if not path.is_file():
            raise ModelError(f"{path} is missing")
        size = path.stat().st_size
        if "bytes" in entry and int(entry["bytes"]) != size:
            raise ModelError(f"{path} has {size} bytes, card.json says {entry['bytes']}: corrupt?")
        digest = sha256_file(path)
        if digest != entry.get("sha256"):
            raise ModelError(f"{path} sha256 {digest[:12]}... does not match card.json: corrupt?")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve_providers(spec: str, available: Sequence[str] | None = None) -> list[str]:
    """``auto`` -> TensorRT, CUDA (those available), then CPU; else a validated comma list."""
    available = list(ort.get_available_providers() if available is None else available)
    if spec.strip().lower() == "auto":
        chosen = [p for p in GPU_PROVIDERS if p in available]
    else:
        chosen = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            name = PROVIDER_ALIASES.get(part.lower(), part)
            if name not in available:
                raise ConfigError(
                    f"ONNX Runtime provider {part!r} is not available here "
                    f"(available: {', '.join(available)})"
                )
            if name not in chosen:
                chosen.append(name)
    if CPU_PROVIDER not in chosen:
        chosen.append(CPU_PROVIDER)
    return chosen


def _provider_options(name: str, max_length: int, cache_dir: Path | None) -> dict[str, str]:
    if name != "TensorrtExecutionProvider":
        return {}
    # One optimisation profile over every batch/sequence shape we send, so TensorRT builds its
    # engine once instead of once per new shape.
    opts = {
        "trt_fp16_enable": "True",
        "trt_profile_min_shapes": "input_ids:1x1,attention_mask:1x1",
        "trt_profile_opt_shapes": "input_ids:32x64,attention_mask:32x64",
        "trt_profile_max_shapes": f"input_ids:{GPU_PLAN.max_texts}x{max_length},"
        f"attention_mask:{GPU_PLAN.max_texts}x{max_length}",
    }
    if cache_dir is not None:
        opts |= {"trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache_dir)}
    return opts


class ModelMetrics:
    """Prometheus series of one loaded model, registered into a registry the caller owns."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.info = Info(
            "moodstream_inference", "Loaded sentiment/emotion model", registry=registry
        )
        self.provider = Gauge(
            "moodstream_inference_provider",
            "ONNX Runtime execution provider in use (1 = active)",
            ["provider"],
            registry=registry,
        )
        self.texts = Counter(
            "moodstream_inference_texts", "Texts scored by the model", registry=registry
        )
        self.truncated = Counter(
            "moodstream_inference_truncated_texts",
            "Texts cut at the model's max length",
            registry=registry,
        )
        self.calls = Counter(
            "moodstream_inference_calls",
            "ONNX Runtime session runs (sub-batches)",
            registry=registry,
        )
        self.seconds = Histogram(
            "moodstream_inference_predict_seconds",
            "Wall time of one predict() call (tokenize + all sub-batches)",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=registry,
        )


class OnnxSentimentModel:
    """Sentiment, emotions and embedding for texts, one ONNX Runtime session.

    Thread-safe for concurrent ``predict`` calls (ONNX Runtime sessions are), though a worker
    should funnel calls through one ``MicroBatcher`` to keep batches full.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        tokenizer: Tokenizer,
        card: ModelCard,
        variant: str,
        plan: BatchPlan | None = None,
    ) -> None:
        self._session = session
        self._card = card
        self._variant = variant
        self._provider = session.get_providers()[0]
        self._plan = plan or default_plan(self._provider, variant)
        self._metrics: ModelMetrics | None = None
        inputs = {i.name for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        if not {"input_ids", "attention_mask"} <= inputs:
            raise ModelError(f"model inputs {sorted(inputs)} lack input_ids/attention_mask")
        if not set(OUTPUTS) <= outputs:
            raise ModelError(f"model outputs {sorted(outputs)} lack one of {list(OUTPUTS)}")
        self._type_ids = "token_type_ids" in inputs
        tokenizer.no_padding()
        tokenizer.enable_truncation(card.max_length)
        self._tokenizer = tokenizer
        pad = tokenizer.token_to_id("[PAD]")
        self._pad_id = 0 if pad is None else pad

    @classmethod
    def from_settings(
        cls, settings: Settings, *, verify: bool = True, registry: CollectorRegistry | None = None
    ) -> OnnxSentimentModel:
        """The model a worker or CLI command configured by ``settings`` should use."""
        model = cls.load(
            settings.model_dir,
            variant=settings.model_variant,
            providers=settings.providers,
            intra_op_threads=settings.intra_op_threads,
            verify=verify,
            cache_dir=Path(settings.data_dir) / "trt-cache",
        )
        if registry is not None:
            model.register_metrics(registry)
        return model

    @classmethod
    def load(
        cls,
        model_dir: str | Path,
        *,
        variant: str = "auto",
        providers: str = "auto",
        intra_op_threads: int = 0,
        verify: bool = True,
        plan: BatchPlan | None = None,
        cache_dir: Path | None = None,
        available: Sequence[str] | None = None,
        model_path: str | Path | None = None,
        spin: bool = False,
    ) -> OnnxSentimentModel:
        """Load ``model_dir`` (card.json + ONNX + tokenizer.json), checking hashes unless told not.

        ``variant="auto"`` takes fp16 when a GPU provider is chosen and int8 on CPU; if ONNX
        Runtime then falls back to CPU (CUDA libraries missing) it reloads the int8 file.
        ``model_path`` runs another ONNX file of the same contract with this card and tokenizer
        (benchmarks, candidate exports); it is not in the card, so its hash is not checked.
        ``spin`` lets idle ONNX Runtime threads busy-wait (off: see ``_session``).
        """
        root = Path(model_dir)
        card = ModelCard.load(root)
        chosen = resolve_providers(providers, available)
        on_gpu = chosen[0] in GPU_PROVIDERS
        if variant == "auto":
            picked = "fp16" if on_gpu else "int8"
        elif variant in VARIANT_FILES:
            picked = variant
        else:
            raise ConfigError(f"model variant must be auto, int8, fp16 or fp32, not {variant!r}")
        if picked == "fp16" and not on_gpu:
            log.warning("fp16 model on CPU is slow; int8 is the CPU variant")
        tokenizer_path = root / "tokenizer.json"
        explicit = model_path is not None
        model_path = Path(model_path) if model_path is not None else root / VARIANT_FILES[picked]
        if not model_path.is_file():
            raise ModelError(f"{model_path} is missing (variant {picked})")
        if verify:
            started = time.perf_counter()
            card.verify(tokenizer_path)
            if not explicit:
                card.verify(model_path)
            elapsed_ms = 1e3 * (time.perf_counter() - started)
            log.debug("verified %s in %.0f ms", model_path.name, elapsed_ms)
        try:
            tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise ModelError(f"{tokenizer_path} is not a tokenizers file: {exc}") from exc

        session = _session(model_path, chosen, intra_op_threads, card.max_length, cache_dir, spin)
        actual = session.get_providers()[0]
        if on_gpu and actual == CPU_PROVIDER:
            log.warning("ONNX Runtime could not start %s; running on CPU", chosen[0])
            if variant == "auto" and not explicit:
                picked, model_path = "int8", root / VARIANT_FILES["int8"]
                if verify:
                    card.verify(model_path)
                session = _session(model_path, [CPU_PROVIDER], intra_op_threads, 0, None, spin)
        model = cls(session, tokenizer, card, picked, plan)
        log.info(
            "model %s %s (%s) on %s",
            card.name,
            card.version,
            picked,
            model.provider,
        )
        return model

    @property
    def version(self) -> str:
        return self._card.version

    @property
    def name(self) -> str:
        return self._card.name

    @property
    def variant(self) -> str:
        return self._variant

    @property
    def provider(self) -> str:
        """The execution provider ONNX Runtime actually runs the graph on."""
        return self._provider

    @property
    def card(self) -> ModelCard:
        return self._card

    @property
    def plan(self) -> BatchPlan:
        return self._plan

    def with_plan(self, plan: BatchPlan) -> OnnxSentimentModel:
        """The same loaded model (session shared) cutting batches by another plan."""
        twin = copy.copy(self)
        twin._plan = plan
        return twin

    def register_metrics(self, registry: CollectorRegistry) -> ModelMetrics:
        """Publish provider/version into ``registry`` and count every later ``predict``."""
        metrics = ModelMetrics(registry)
        metrics.info.info(
            {"name": self.name, "version": self.version, "variant": self.variant,
             "provider": self.provider}
        )  # fmt: skip
        metrics.provider.labels(provider=self.provider).set(1)
        self._metrics = metrics
        return metrics

    def tokenize(self, texts: Sequence[str]) -> list[Encoding]:
        """Encodings truncated at the card's max length (overflow kept to flag truncation)."""
        return self._tokenizer.encode_batch(list(texts))

    def predict(self, texts: Sequence[str]) -> Scores:
        started = time.perf_counter()
        n = len(texts)
        sentiment = np.empty((n, len(SENTIMENTS)), dtype=np.float32)
        emotions = np.empty((n, len(EMOTIONS)), dtype=np.float32)
        embedding = np.empty((n, self._card.embedding_dim), dtype=np.float32)
        truncated = np.zeros(n, dtype=np.bool_)
        if n == 0:
            return Scores(sentiment, emotions, embedding, truncated)
        encodings = self.tokenize(texts)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=n)
        content = np.fromiter(
            (len(e.special_tokens_mask) - sum(e.special_tokens_mask) for e in encodings),
            dtype=np.int64,
            count=n,
        )
        truncated[:] = [bool(e.overflowing) for e in encodings]

        empty = content == 0
        sentiment[empty] = EMPTY_SENTIMENT
        emotions[empty] = 0.0
        emotions[empty, EMOTIONS.index("neutral")] = EMPTY_NEUTRAL_EMOTION
        embedding[empty] = 0.0

        todo = np.flatnonzero(~empty)
        order = todo[np.argsort(lengths[todo], kind="stable")] if self._plan.sort else todo
        calls = 0
        for start, end in self._plan.cut(lengths[order].tolist()):
            rows = order[start:end]
            outs = self._run([encodings[i] for i in rows], int(lengths[rows].max()))
            sentiment[rows], emotions[rows], embedding[rows] = outs
            calls += 1
        if self._metrics is not None:
            self._metrics.texts.inc(n)
            self._metrics.truncated.inc(int(truncated.sum()))
            self._metrics.calls.inc(calls)
            self._metrics.seconds.observe(time.perf_counter() - started)
        return Scores(sentiment, emotions, embedding, truncated)

    def _run(self, batch: Sequence[Encoding], width: int) -> list[npt.NDArray[np.float32]]:
        ids = np.full((len(batch), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, enc in enumerate(batch):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if self._type_ids:
            feed["token_type_ids"] = np.zeros_like(ids)
        outs = self._session.run(list(OUTPUTS), feed)
        return [np.asarray(o, dtype=np.float32) for o in outs]


def _session(
    path: Path,
    providers: list[str],
    threads: int,
    max_length: int,
    cache_dir: Path | None,
    spin: bool = False,
) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.inter_op_num_threads = 1
    if threads > 0:
        opts.intra_op_num_threads = threads
    # Busy-waiting intra-op threads burn the cores Faust, Kafka and other workers need; on a
    # shared 2-core machine spinning halved int8 throughput at 2 threads (benchmarks/inference.py).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    with_options = [(p, _provider_options(p, max_length, cache_dir)) for p in providers]
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=with_options)
    except Exception as exc:  # onnxruntime raises its own untyped errors
        if providers[0] == "TensorrtExecutionProvider":
            log.warning("TensorRT failed (%s); trying without it", str(exc).splitlines()[0])
            return _session(path, providers[1:], threads, max_length, cache_dir, spin)
        raise ModelError(f"ONNX Runtime cannot load {path}: {str(exc).splitlines()[0]}") from exc


def model_fingerprint(model_dir: str | Path, model: SentimentModel | None = None) -> str:
    """What the index records as ``model_sha256``: the sha256 of the model's ``card.json``.

    The card lists every artifact's hash, so it names the embedding space whichever variant
    (int8, fp16) runs; the worker compares it before serving an index.
    """
    card = Path(model_dir) / "card.json"
    if card.is_file():
        return hashlib.sha256(card.read_bytes()).hexdigest()
    if model is not None:
        return hashlib.sha256(model.version.encode("utf-8")).hexdigest()
    raise ModelError(f"{card} is missing: not a moodstream model folder")
