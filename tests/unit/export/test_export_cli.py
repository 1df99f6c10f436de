"""``moodstream export``: sub-commands exist and bad input is one readable line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stream.cli import main


def test_group_lists_train_and_onnx() -> None:
    from export.cli import export

    result = CliRunner().invoke(export, ["--help"])
    assert result.exit_code == 0
    assert "train" in result.output and "onnx" in result.output


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return int(exc.value.code or 0), capsys.readouterr().err


def test_train_without_data_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    code, err = _run(
        ["export", "train", "--data-dir", str(tmp_path), "--work-dir", str(tmp_path / "w")], capsys
    )
    assert code == 2
    assert err.strip().count("\n") == 0 and "data file not found" in err


def test_onnx_without_trained_model_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    code, err = _run(
        ["export", "onnx", "--work-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")], capsys
    )
    assert code == 2
    assert "no trained model" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
