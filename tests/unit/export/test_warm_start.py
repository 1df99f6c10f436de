"""Warm start: a shipped ONNX graph's weights load back into torch (tiny model, no data)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from export.onnx_model import MoodModel, export_onnx, pad_batch, torch_outputs  # noqa: E402
from export.warm_start import load_warm_start  # noqa: E402
from stream.errors import ModelError  # noqa: E402


def test_onnx_weights_round_trip_into_a_fresh_model(tmp_path: Path) -> None:
    tuned = MoodModel.tiny(seed=0).eval()
    with torch.no_grad():  # "fine-tuning": small moves away from the base weights
        for p in tuned.parameters():
            p.add_(0.003 * torch.randn_like(p))
    batch = pad_batch([[1, 5, 7, 2], [1, 9, 2]])
    path = tmp_path / "m.onnx"
    export_onnx(tuned, path, batch)
    fresh = MoodModel.tiny(seed=0)
    load_warm_start(fresh, path)
    fresh.eval()
    want, got = torch_outputs(tuned, batch), torch_outputs(fresh, batch)
    for name in want:
        assert abs(want[name] - got[name]).max() < 1e-5, name


def test_missing_source_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_warm_start(MoodModel.tiny(seed=0), tmp_path / "nope.onnx")
