"""The layout's two import rules, checked on the source (every import, also inside functions):
the worker and all it imports never reach the tools, and the core stays on its own."""

from __future__ import annotations

import ast
from pathlib import Path

import stream

ROOT = Path(stream.__file__).parent
TOOLS = ("stream.offline", "stream.sim", "stream.devtools", "stream.cli")
CORE_MAY_IMPORT = ("stream.core", "stream.ports", "stream.errors")


def module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(root: Path, path: Path) -> set[str]:
    """Every ``stream.*`` module a file names, resolved to modules that exist under ``root``."""
    found: set[str] = set()
    package = module_name(root, path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base]) if base else ".".join(up)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(n for n in names if n == root.name or n.startswith(root.name + "."))
    return {n for n in found if _exists(root, n)}


def _exists(root: Path, name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    where = root / rel
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def import_graph(root: Path) -> dict[str, set[str]]:
    return {module_name(root, p): project_imports(root, p) for p in sorted(root.rglob("*.py"))}


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [m for m in graph if m == start or m.startswith(start + ".")]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo.extend(graph.get(module, ()))
    return seen


def _under(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def worker_violations(root: Path) -> list[str]:
    tools = tuple(p.replace("stream", root.name, 1) for p in TOOLS)
    worker = f"{root.name}.worker"
    return sorted(m for m in reachable(import_graph(root), worker) if _under(m, tools))


def core_violations(root: Path) -> list[str]:
    allowed = tuple(p.replace("stream", root.name, 1) for p in CORE_MAY_IMPORT)
    graph = import_graph(root)
    core = f"{root.name}.core"
    return sorted(
        f"{m} imports {dep}"
        for m, deps in graph.items()
        if _under(m, (core,))
        for dep in deps
        if not _under(dep, allowed) and dep != root.name
    )


def test_the_worker_never_reaches_offline_sim_devtools_or_cli() -> None:
    assert reachable(import_graph(ROOT), "stream.worker") >= {"stream.worker.app"}
    assert worker_violations(ROOT) == []


def test_the_core_imports_only_itself_the_ports_and_the_errors() -> None:
    assert core_violations(ROOT) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "stream"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_tool_import_anywhere_below_the_worker_is_found(tmp_path: Path) -> None:
    """The check itself: an import inside a function, two hops away, is caught."""
    root = _tree(
        tmp_path,
        {
            "__init__.py": "",
            "worker/__init__.py": "",
            "worker/app.py": "from stream.adapters import kafka\n",
            "adapters/__init__.py": "",
            "adapters/kafka.py": "def f():\n    from stream.sim.simulate import x\n",
            "sim/__init__.py": "",
            "sim/simulate.py": "x = 1\n",
            "core/__init__.py": "",
            "core/rank.py": "from stream.adapters import kafka\nfrom ..errors import E\n",
            "errors.py": "class E(Exception): ...\n",
        },
    )
    assert worker_violations(root) == ["stream.sim.simulate"]
    assert core_violations(root) == [
        "stream.core.rank imports stream.adapters",
        "stream.core.rank imports stream.adapters.kafka",
    ]
