"""The import graph of the core package ``texkit/`` has no cycle, and training never imports the report.

Read from the source with ``ast`` (nothing is imported). Every ``import`` / ``from ... import`` of a
``texkit`` module counts wherever it stands: at module level, inside a function (a deferred
import), and under ``if TYPE_CHECKING:``; a cycle through any of them is a cycle of the design,
even where Python happens to resolve it at run time. ``from package import name`` points at the
submodule ``package.name`` when there is one, else at the package. The implicit import of a
module's parent packages is not an edge (every submodule would form a cycle with an ``__init__``
that imports it).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "texkit"


def core_modules(root: Path = CORE) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of the package at ``root``."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _target(name: str, modules: dict[str, Path]) -> str | None:
    """The innermost module of ``modules`` that ``name`` (a module or ``module.attribute``) lies in."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``module`` imports anywhere in its source."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names]
        for name in names:
            target = _target(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def import_graph(root: Path = CORE) -> dict[str, set[str]]:
    """``{module: modules it imports}`` of the package at ``root``."""
    modules = core_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle ``[a, b, ..., a]`` of ``graph`` (depth-first search), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_core_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "texkit.session" in graph["texkit.training"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_training_does_not_import_the_report():
    graph = import_graph()
    assert "texkit.report" not in graph["texkit.training"]
    assert "texkit.page_parts" not in graph["texkit.training"]


@pytest.mark.parametrize(
    ("sources", "cycle"),
    [
        ({"a.py": "from pkg import b\n", "b.py": "def f():\n    from pkg.a import x\n"}, ["pkg.a", "pkg.b", "pkg.a"]),
        ({"a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n", "b.py": "import pkg.a\n"}, ["pkg.a", "pkg.b", "pkg.a"]),
        ({"a.py": "from . import b\n", "b.py": "from .c import x\n", "c.py": "from .a import y\n"}, ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]),
        ({"a.py": "from pkg import b\n", "b.py": "import os\n"}, None),
        ({"__init__.py": "from pkg.a import x\n", "a.py": "import json\n"}, None),
    ],
)
def test_the_walk_finds_module_level_deferred_and_type_checking_cycles(tmp_path, sources, cycle):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for name, text in sources.items():
        (pkg / name).write_text(text)
    assert find_cycle(import_graph(pkg)) == cycle
