"""The core stays pure: neither faust, onnxruntime nor faiss is imported by stream.core."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import stream.core

CORE = Path(stream.core.__file__).parent
FORBIDDEN = ("faust", "onnxruntime", "faiss", "aiokafka", "mode")


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_core_module_names_a_forbidden_import() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) >= 7
    for path in modules:
        bad = _imported_roots(path) & set(FORBIDDEN)
        assert not bad, f"{path.name} imports {bad}"


def test_importing_the_core_loads_none_of_them() -> None:
    """In a fresh interpreter, so modules other tests imported cannot hide a leak."""
    names = [f"stream.core.{p.stem}" for p in sorted(CORE.glob("*.py")) if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
