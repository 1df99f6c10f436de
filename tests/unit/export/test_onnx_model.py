"""Export + parity on a tiny random BERT (hidden 32, 2 layers): fast, no weights to load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from export.onnx_model import (  # noqa: E402
    OUTPUTS,
    Batch,
    MoodModel,
    check_parity,
    convert_fp16,
    export_onnx,
    optimize_graph,
    ort_session,
    pad_batch,
    quantize_int8,
    run_onnx,
    torch_outputs,
    verify_export,
)
from stream.errors import ParityError  # noqa: E402


def _batches(seed: int = 0) -> list[Batch]:
    rng = np.random.default_rng(seed)

    def texts(n: int, lo: int, hi: int) -> list[list[int]]:
        return [[2, *rng.integers(5, 120, int(rng.integers(lo, hi))).tolist(), 3] for _ in range(n)]

    return [pad_batch(texts(1, 1, 3)), pad_batch(texts(5, 1, 40)), pad_batch(texts(3, 60, 100))]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[MoodModel, Path]:
    model = MoodModel.tiny(seed=1).eval()
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    export_onnx(model, path, pad_batch([[2, 7, 8, 3], [2, 9, 3]]))
    return model, path


def test_export_matches_torch_on_other_batch_and_sequence_sizes(
    exported: tuple[MoodModel, Path],
) -> None:
    model, path = exported
    worst = verify_export(model, path, _batches())
    assert set(worst) == set(OUTPUTS) and max(worst.values()) < 1e-5
    out = run_onnx(ort_session(path), _batches()[1])
    assert out["sentiment"].shape == (5, 3) and out["emotions"].shape == (5, 28)
    np.testing.assert_allclose(out["sentiment"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out["embedding"], axis=1), 1.0, atol=1e-5)
    assert ((out["emotions"] > 0) & (out["emotions"] < 1)).all()


def test_graph_inputs_are_int64_with_dynamic_axes(exported: tuple[MoodModel, Path]) -> None:
    graph = onnx.load(str(exported[1])).graph
    assert [i.name for i in graph.input] == ["input_ids", "attention_mask"]
    assert [o.name for o in graph.output] == list(OUTPUTS)
    for inp in graph.input:
        assert inp.type.tensor_type.elem_type == onnx.TensorProto.INT64
        dims = [d.dim_param for d in inp.type.tensor_type.shape.dim]
        assert dims == ["batch", "sequence"]


def test_padding_does_not_change_a_text_result(exported: tuple[MoodModel, Path]) -> None:
    session = ort_session(exported[1])
    alone = run_onnx(session, pad_batch([[2, 11, 12, 3]]))
    padded = run_onnx(session, pad_batch([[2, 11, 12, 3], [2, *range(5, 60), 3]]))
    for name in OUTPUTS:
        np.testing.assert_allclose(alone[name][0], padded[name][0], atol=1e-5)


def test_model_changed_after_export_raises_parity_error(tmp_path: Path) -> None:
    model = MoodModel.tiny(seed=2).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path, _batches()[1])
    with torch.no_grad():
        model.emotion_head.bias += 0.5
    with pytest.raises(ParityError, match="emotions"):
        verify_export(model, path, _batches())


def test_tampered_graph_weights_raise_parity_error(tmp_path: Path) -> None:
    model = MoodModel.tiny(seed=3).eval()
    path = tmp_path / "m.onnx"
    export_onnx(model, path, _batches()[1])
    proto = onnx.load(str(path))
    biggest = max(proto.graph.initializer, key=lambda t: np.prod(t.dims))
    arr = onnx.numpy_helper.to_array(biggest).copy()
    arr += (
        np.random.default_rng(0).normal(0.0, 0.5, arr.shape).astype(arr.dtype)
    )  # not a uniform shift: LayerNorm would cancel that
    biggest.CopyFrom(onnx.numpy_helper.from_array(arr, biggest.name))
    onnx.save(proto, str(path))
    with pytest.raises(ParityError):
        verify_export(model, path, _batches())


def test_check_parity_rejects_wrong_shape_missing_output_and_nan() -> None:
    ref = {n: np.zeros((2, 3), np.float32) for n in OUTPUTS}
    with pytest.raises(ParityError, match="shape"):
        check_parity(ref, {**ref, "embedding": np.zeros((2, 4), np.float32)})
    with pytest.raises(ParityError, match="shape"):
        check_parity(ref, {k: v for k, v in ref.items() if k != "sentiment"})
    with pytest.raises(ParityError):
        check_parity(ref, {**ref, "sentiment": np.full((2, 3), np.nan, np.float32)})
    assert check_parity(ref, ref) == dict.fromkeys(OUTPUTS, 0.0)


def test_optimised_int8_and_fp16_variants_stay_close(
    exported: tuple[MoodModel, Path], tmp_path: Path
) -> None:
    model, path = exported
    optimize_graph(path, tmp_path / "opt.onnx")
    verify_export(model, tmp_path / "opt.onnx", _batches())
    quantize_int8(path, tmp_path / "int8.onnx")
    convert_fp16(path, tmp_path / "fp16.onnx")
    batch = _batches()[1]
    ref = torch_outputs(model, batch)
    for name, tol in (("int8.onnx", 0.1), ("fp16.onnx", 0.01)):
        proto = onnx.load(str(tmp_path / name))
        assert [i.type.tensor_type.elem_type for i in proto.graph.input] == [
            onnx.TensorProto.INT64
        ] * 2
        assert {o.type.tensor_type.elem_type for o in proto.graph.output} == {
            onnx.TensorProto.FLOAT
        }
        out = run_onnx(ort_session(tmp_path / name), batch)
        for key in OUTPUTS:
            assert np.max(np.abs(out[key] - ref[key])) < tol, (name, key)
    int8_ops = {n.op_type for n in onnx.load(str(tmp_path / "int8.onnx")).graph.node}
    assert int8_ops & {"MatMulInteger", "DynamicQuantizeMatMul", "DynamicQuantizeLinear"}
