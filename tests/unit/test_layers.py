"""The package's layering: every import goes to an earlier layer, and there are no cycles.

Layers, in data-flow order (a module may import its own layer and earlier ones)::

    base (units, errors, _version, progress) -> meshing -> library -> config -> model -> fem
    -> output -> simulation -> studies -> cli

The imports are read from the source (AST), including imports inside functions (lazy imports
hide cycles at import time but not at run time). Imports under ``if TYPE_CHECKING:`` are
annotations only: they must respect the layers but do not count for cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "tumorpde"

LAYERS = [
    "base",
    "meshing",
    "library",
    "config",
    "model",
    "fem",
    "output",
    "simulation",
    "studies",
    "cli",
]
BASE = {"tumorpde.units", "tumorpde.errors", "tumorpde._version", "tumorpde.progress"}
#: The facade (lazy public API) and the ``python -m tumorpde`` entry may import anything.
FACADE = {"tumorpde", "tumorpde.__main__"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    if module in BASE:
        return 0
    parts = module.split(".")
    if len(parts) < 2 or parts[1] not in LAYERS:
        raise AssertionError(f"{module} is in no layer; put it in a layer subpackage")
    return LAYERS.index(parts[1])


def _in_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(module: str, source: str | None = None) -> list[tuple[str, int, bool]]:
    """``(imported tumorpde module, line, type-checking only)`` of one module."""
    path = MODULES.get(module, PKG / "_.py")
    tree = ast.parse(source if source is not None else path.read_text(), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_pkg else module.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                sub = f"{base}.{a.name}"
                names.append(sub if sub in MODULES else base)
        for name in names:
            if name == "tumorpde" or name.startswith("tumorpde."):
                while name not in MODULES:  # tumorpde.fem.backend.x -> tumorpde.fem.backend
                    name = name.rsplit(".", 1)[0]
                out.append((name, node.lineno, _in_type_checking(node, parents)))
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def test_every_module_is_in_a_layer():
    for m in MODULES:
        if m not in FACADE:
            _layer(m)


def _upward(graph: dict[str, list[tuple[str, int, bool]]]) -> list[str]:
    bad = []
    for m, imports in graph.items():
        if m in FACADE:
            continue
        for target, line, _ in imports:
            if target in FACADE:
                bad.append(f"{m}:{line} imports the facade {target} (import the layer module)")
            elif _layer(target) > _layer(m):
                bad.append(
                    f"{m}:{line} imports {target} "
                    f"({LAYERS[_layer(m)]} -> {LAYERS[_layer(target)]} is upward)"
                )
    return bad


def test_no_upward_imports():
    bad = _upward(GRAPH)
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_no_private_imports_across_subpackages():
    bad = []
    for m, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tumorpde"):
                src = ".".join(m.split(".")[:2])
                dst = ".".join((node.module or "").split(".")[:2])
                private = [a.name for a in node.names if a.name.startswith("_")]
                private = [p for p in private if p != "__version__"]
                if private and src != dst:
                    bad.append(f"{m}:{node.lineno} imports {private} from {node.module}")
    assert not bad, "private names used across subpackages:\n" + "\n".join(bad)


def _cycle() -> list[str] | None:
    edges = {m: sorted({t for t, _, tc in imps if not tc and t != m}) for m, imps in GRAPH.items()}
    # a package's __init__ runs before its submodules: importing pkg.sub imports pkg
    color: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        color[m] = 1
        stack.append(m)
        for t in edges.get(m, []):
            if color.get(t) == 1:
                return [*stack[stack.index(t) :], t]
            if t not in color:
                found = visit(t)
                if found:
                    return found
        stack.pop()
        color[m] = 2
        return None

    for m in sorted(edges):
        if m not in color:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycles():
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("layer", ["model", "config", "library", "meshing"])
def test_pure_layers_do_not_import_dolfinx(layer):
    bad = []
    for m, path in MODULES.items():
        if m.split(".")[1:2] != [layer]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                if any(n.split(".")[0] in ("dolfinx", "petsc4py", "mpi4py") for n in names):
                    bad.append(f"{m}:{node.lineno}")
    assert not bad, f"{layer} imports DOLFINx/PETSc/MPI: {bad}"


def test_the_checker_catches_upward_and_lazy_imports():
    """The checker is not vacuous: lazy and relative upward imports are flagged."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "def f():\n    from tumorpde.fem.forms import build_forms\n"
        "from ..output import qoi\n"
        "if TYPE_CHECKING:\n    from tumorpde.simulation.stepper import StepInfo\n"
    )
    found = _imports("tumorpde.config.fake", src)
    assert ("tumorpde.fem.forms", 3, False) in found
    assert ("tumorpde.output.qoi", 4, False) in found
    assert ("tumorpde.simulation.stepper", 6, True) in found
    assert len(_upward({"tumorpde.config.fake": found})) == 3
    with pytest.raises(AssertionError):
        _layer("tumorpde.somewhere_flat")
