"""The import graph, read from the source with ``ast``: no cycles, and imports point one way.

    app ──► engine.api ◄── (engine.cli)        training ──► engine
                │
    engine.restorer ─► engine.pipeline ─► engine.references ─► engine.runtime ─► engine.nets
                                     └──► engine.faces, engine.identity, engine.imageio, engine.files

Every import counts, also those inside functions (they run too); imports under
``if TYPE_CHECKING:`` do not. A second check imports ``engine.api`` for real: the GUI thread
imports it, so it must not load torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("engine", "app", "training")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module ``name`` imports: project modules resolved, others by their top-level name."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule pkg.sub when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        for target in targets:
            found.add(target if target.split(".")[0] in PACKAGES else target.split(".")[0])
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def violations(graph: dict[str, set[str]], importer: str, forbidden: tuple[str, ...]) -> list[str]:
    """``importer`` (a module or package prefix) importing anything under ``forbidden``."""
    out = []
    for name, targets in sorted(graph.items()):
        if name == importer or name.startswith(importer + "."):
            for target in sorted(targets):
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    out.append(f"{name} imports {target}")
    return out


def test_the_graph_is_read_from_real_imports(graph):
    """The reader itself: known edges of the tree are found, relative and absolute."""
    assert "engine.pipeline" in graph["engine.restorer"]
    assert "engine.references" in graph["engine.pipeline"]
    assert "engine.api" in graph["app.jobs"]
    assert "torch" in graph["engine.runtime.face_restorer"]
    assert "engine.restorer" not in graph["engine.api"]  # only under TYPE_CHECKING, and loaded on use


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_app_talks_to_the_engine_through_engine_api_only(graph):
    engine_imports = [
        f"{name} imports {target}"
        for name, targets in sorted(graph.items())
        if name.startswith("app")
        for target in sorted(targets)
        if target.startswith("engine") and target != "engine.api"
    ]
    assert engine_imports == []


@pytest.mark.parametrize(
    ("importer", "forbidden"),
    [
        ("engine", ("app", "training", "PySide6")),
        ("app", ("torch", "torchvision", "onnxruntime", "training")),
        ("training", ("app", "PySide6")),
        # runtime runs networks; the policy that decides what to run sits above it
        ("engine.runtime", ("engine.pipeline", "engine.references", "engine.restorer", "engine.api")),
        ("engine.nets", ("engine.runtime", "engine.pipeline", "engine.references", "engine.restorer", "engine.api")),
        ("engine.faces", ("engine.runtime", "engine.pipeline", "engine.references", "engine.restorer", "engine.api")),
        ("engine.identity", ("engine.runtime", "engine.pipeline", "engine.references", "engine.restorer")),
        ("engine.references", ("engine.pipeline", "engine.restorer", "engine.api")),
        ("engine.pipeline", ("engine.restorer", "engine.api")),
        ("engine.types", ("engine.restorer", "engine.pipeline", "engine.runtime", "torch")),
    ],
)
def test_imports_point_one_way(graph, importer, forbidden):
    assert violations(graph, importer, forbidden) == []


def test_the_rule_checker_sees_a_violation(graph):
    assert violations(graph, "engine.restorer", ("engine.pipeline",)) == ["engine.restorer imports engine.pipeline"]


def test_importing_the_engine_boundary_loads_neither_torch_nor_qt():
    """The GUI thread imports engine.api; the engine's heavy modules load in the worker thread."""
    code = (
        "import sys, engine.api, engine.cli\n"
        "heavy = sorted(m for m in ('torch', 'PySide6', 'onnxruntime') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
