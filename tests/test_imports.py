"""The core's imports run one way: each module imports only modules before it in ``ORDER``.

Imports inside functions count (they run); imports under ``if TYPE_CHECKING:`` do not (they are for
the type checker alone). The node vocabulary (:mod:`archspec.nodes`) imports nothing but the errors.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import networkx as nx
import pytest
from conftest import ROOT

PACKAGE = ROOT / "archspec"
ORDER = [
    "archspec.errors",
    "archspec.loader",
    "archspec.compose",
    "archspec.fingerprint",
    "archspec.nodes",
    "archspec.specbase",
    "archspec.registry",
    "archspec.slots",
    "archspec.spec",
    "archspec.flow",
    "archspec.plan",
]
"""The core, in import order: errors → nodes → specbase → registry → slots → spec → the flow planner → the resolver.
(The registry's one import beyond it, of the built-in components, is how plugins load: see ``load_plugins``.)"""


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """The archspec modules a file imports when it runs (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module == "archspec":  # from archspec import registry
            found |= {f"archspec.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("archspec"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("archspec")}
    return found


MODULES = {_module(path): path for path in PACKAGE.rglob("*.py")}


@functools.cache
def _graph() -> nx.DiGraph:
    graph = nx.DiGraph()
    for name, path in MODULES.items():
        for module in runtime_imports(path):
            if module in MODULES and module != name and not name.startswith(f"{module}."):
                graph.add_edge(name, module)
    graph.remove_edge("archspec.registry", "archspec.components")  # loading the built-ins, as any plugin loads
    return graph


@pytest.mark.parametrize("name", ORDER)
def test_the_core_imports_only_what_comes_before_it(name):
    before = set(ORDER[: ORDER.index(name)])
    imported = {module for module in _graph().successors(name) if module in ORDER} if name in _graph() else set()
    assert imported <= before, sorted(imported - before)


def test_no_module_of_the_core_is_on_an_import_cycle():
    """Through any module, lazy imports included: the core never waits on what imports it."""
    cycles = [cycle for cycle in nx.simple_cycles(_graph()) if set(cycle) & set(ORDER)]
    assert cycles == []


def test_the_node_vocabulary_imports_only_the_errors():
    assert {m for m in runtime_imports(MODULES["archspec.nodes"]) if m in MODULES} == {"archspec.errors"}


def test_components_use_the_vocabulary_not_the_resolver():
    """A component plans with the vocabulary and the public helpers; the resolver calls it, not the other way."""
    for name, path in MODULES.items():
        if name.startswith("archspec.components."):
            assert "archspec.plan" not in runtime_imports(path), name


KNOWN_CYCLES: set[frozenset[str]] = set()
"""Cycles allowed to stay: none. (``fit`` once restored a run with ``fit_state``, which imported ``fit``'s
records; those records now live in ``fit_state``. A stream names the catalog's ``Reader`` for types only.)"""


def test_no_import_cycle_beyond_the_known_ones():
    """Lazy imports count, as above. The application modules (bench, budget, checkpoint, fit, models,
    sweep, weights_file, ...) once formed one circle through ``budget`` importing ``sweep`` for the
    activation estimate, and ``bench`` and ``export`` importing ``models`` for ``output_tensors``."""
    cycles = {frozenset(cycle) for cycle in nx.simple_cycles(_graph())}
    assert cycles <= KNOWN_CYCLES, sorted(sorted(cycle) for cycle in cycles - KNOWN_CYCLES)


def test_plan_arithmetic_imports_only_the_vocabulary():
    """The memory budget and its activation estimate are plan arithmetic: no torch, no application module."""
    assert {m for m in runtime_imports(MODULES["archspec.budget"]) if m in MODULES} == {
        "archspec.errors",
        "archspec.nodes",
        "archspec.units",
    }
    assert {m for m in runtime_imports(MODULES["archspec.units"]) if m in MODULES} == set()
    assert "torch" not in MODULES["archspec.budget"].read_text()
