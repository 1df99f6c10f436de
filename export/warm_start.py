"""Warm start: the weights of a shipped model folder back into a torch ``MoodModel``.

Shipped folders hold ONNX only. ``model.fp16.onnx`` is converted from the plain (unfused) fp32
export, so every parameter is an initializer: most keep their torch name (prefix ``model.``);
the exporter stores each Linear weight of the encoder transposed under an ``onnx::MatMul_*``
name. Those are matched by value: a fine-tuned weight stays far closer to its own base-encoder
weight than to any other (checked; an ambiguous match is an error). fp16 rounding (~5e-4
relative) is far below what further fine-tuning moves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from export.onnx_model import MoodModel
from stream.errors import ModelError

MIN_MATCH_COSINE = 0.9


def state_from_onnx(path: Path, base: MoodModel) -> dict[str, torch.Tensor]:
    """A ``MoodModel`` state dict rebuilt from the initializers of ``path``."""
    import onnx
    from onnx import numpy_helper

    if not path.is_file():
        raise ModelError(f"warm start: {path} not found")
    inits = {
        t.name: numpy_helper.to_array(t).astype(np.float32)
        for t in onnx.load(str(path)).graph.initializer
    }
    target = base.state_dict()
    state: dict[str, torch.Tensor] = {}
    loose = {n: a for n, a in inits.items() if not n.startswith("model.")}
    for name, ref in target.items():
        arr = inits.get(f"model.{name}")
        if arr is not None and tuple(arr.shape) == tuple(ref.shape):
            state[name] = torch.from_numpy(arr.copy())
            continue
        ref_t = ref.detach().numpy().T.ravel()
        best, best_cos = None, -1.0
        for cand, a in loose.items():
            if a.size != ref_t.size or tuple(a.shape) != tuple(ref.shape[::-1]):
                continue
            cos = float(a.ravel() @ ref_t / (np.linalg.norm(a) * np.linalg.norm(ref_t) + 1e-12))
            if cos > best_cos:
                best, best_cos = cand, cos
        if best is None or best_cos < MIN_MATCH_COSINE:
            raise ModelError(f"warm start: no initializer in {path} matches {name}")
        state[name] = torch.from_numpy(loose.pop(best).T.copy())
    return state


def load_warm_start(model: MoodModel, source: Path) -> None:
    """Load ``source`` (a model folder, an ONNX file or a torch state dict) into ``model``."""
    if source.is_dir():
        source = source / "model.fp16.onnx"
    if source.suffix == ".onnx":
        state = state_from_onnx(source, model)
    else:
        state = torch.load(source, weights_only=True)
    model.load_state_dict(state)
