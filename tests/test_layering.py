"""The package is a one-way chain of layers; no module imports from a layer above its own.

    core (types, cells, recurrent, scan, attention) -> models -> data -> diagnostics -> train
        -> evaluate -> tune -> apps -> cli

Every ``import`` statement counts, at module level and inside functions alike (a function-level
import is still a dependency; it only hides a cycle). Modules also form no import cycle among
themselves. ``diagnostics`` sits below ``train``: it needs only the core (and Lightning for its
callback), and ``train`` attaches its callback, so it may not import ``train`` or anything above.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "rnnkit"

CHAIN = (
    "core",
    "models",
    "data",
    "diagnostics",
    "train",
    "evaluate",
    "tune",
    "deploy",
    "apps",
    "cli",
)
LAYER_OF = {
    "types": "core",
    "cells": "core",
    "recurrent": "core",
    "fused": "core",  # the C++ fused paths' autograd Functions
    "_ext": "core",  # builds and loads the C++ extension
    "scan": "core",
    "attention": "core",
    "recipes": "core",  # stdlib only: the shipped configs/ folder
    "integrity": "core",  # stdlib only: file digests and atomic-write leftovers
    "provenance": "core",  # the versions a run records
    "cell_names": "core",  # stdlib only: the cell names configs accept
    "frame_options": "core",  # stdlib only: the framing options configs accept
    "models": "models",
    "data": "data",
    "diagnostics": "diagnostics",
    "train": "train",
    "evaluate": "evaluate",
    "tune": "tune",  # searches over train's fits with evaluate's splits
    "artifact": "data",  # reads a run's artifact folder; Lightning-free, below train
    "predictor": "deploy",  # serving imports no training code (tested on sys.modules)
    "export": "deploy",  # export checks parity on the run's own data (builds it through train)
    "serve": "deploy",
    "apps": "apps",
    "demo": "apps",
    "demo_lm": "apps",
    "cli": "cli",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> str:
    """The layer of ``rnnkit.X...``; the package root re-exports the core."""
    parts = module.split(".")
    if len(parts) == 1:
        return "core"
    if parts[1] not in LAYER_OF:
        raise AssertionError(f"{module}: no layer assigned; add it to LAYER_OF in {__file__}")
    return LAYER_OF[parts[1]]


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    is_package = MODULES[importer].name == "__init__.py"
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> list[tuple[int, str]]:
    """``(line, imported rnnkit module)`` for every import statement of ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "rnnkit"]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target.split(".")[0] != "rnnkit":
                continue
            for alias in node.names:  # `from rnnkit.train import tasks` names a module
                sub = f"{target}.{alias.name}"
                out.append((node.lineno, sub if sub in MODULES else target))
    return out


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer(module)


def test_no_import_from_a_higher_layer() -> None:
    bad = []
    for module in MODULES:
        own = CHAIN.index(layer(module))
        for line, target in imports(module):
            if CHAIN.index(layer(target)) > own:
                bad.append(
                    f"{MODULES[module].relative_to(SRC)}:{line} ({layer(module)}) imports "
                    f"{target} ({layer(target)})"
                )
    assert not bad, "imports against the chain " + " -> ".join(CHAIN) + ":\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
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

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = {t for _, t in imports(module) if t in MODULES and t != module}
        # A package's own __init__ re-exports its modules; a module importing a sibling by its
        # full name does not pass through the __init__, so those edges are not cycles.
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    return graph


def test_no_import_cycles_between_modules() -> None:
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_check_sees_function_level_imports() -> None:
    """The walk reads imports inside functions too (they are where cycles hide)."""
    found = imports("rnnkit.train.artifact")
    assert any(t == "rnnkit.train.experiment_io" for _, t in found)
    tree = ast.parse(MODULES["rnnkit.train.artifact"].read_text(encoding="utf-8"))
    top = {a.module for a in tree.body if isinstance(a, ast.ImportFrom)}
    assert "rnnkit.train.experiment_io" not in top  # it is a function-level import
