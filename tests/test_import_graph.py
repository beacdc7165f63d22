"""The import graph of src/convlens, read from the source with ast: floors point down only, no cycles.

Every import counts (module level and inside functions; ``if TYPE_CHECKING:`` blocks do not, they never
run). ``from a.b import c`` is an edge to the module ``a.b.c`` when there is one, else to ``a.b``. The
package ``convlens/__init__.py`` is the composition root above every floor (it maps ``cl.explain`` to
the lab and declares the providers of :mod:`convlens.extensions`); no module imports it (``__version__``
aside).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# DESIGN.md's floors, lowest first: a module may import its own floor and the floors below.
FLOORS: list[tuple[str, ...]] = [
    # (resources, files, archive: error-checked memory and file helpers on their way from the reliability work)
    ("errors", "typing", "geometry", "switches", "extensions", "resources", "files", "archive", "rng", "blas_threads"),
    ("ops",),
    # (regularizers, constraints and their serialization: layers take them as arguments)
    ("layers", "initializers", "activations", "losses", "regularizers", "constraints", "serialization"),
    (
        "models", "model", "trainer", "sequential", "functional", "penalties", "model_checks", "fusion",
        "training", "training_data", "checkpoint", "callbacks", "callback_base", "callbacks_files", "callbacks_extra",
        "progbar", "metrics", "optimizers", "saving",
        "summary_table", "allocator", "utils", "course", "datasets", "inference", "data_parallel", "step_twins",
    ),
    ("lab", "interop"),
    ("cli", "web", "widgets", "__main__"),
]  # fmt: skip


def modules() -> dict[str, Path]:
    found = {}
    for path in (SRC / "convlens").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The convlens modules ``name`` imports (type-checking-only imports left out)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                if (base, alias.name) != ("convlens", "__version__"):  # a constant, not code
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {m for m in found if m.startswith("convlens") and m != name}


def floor(name: str) -> int:
    top = name.split(".")[1]
    return next(i for i, group in enumerate(FLOORS) if top in group)


@functools.cache
def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items() if name != "convlens"}


def test_every_module_has_a_floor() -> None:
    for name in graph():
        floor(name)  # StopIteration: a new top-level module must be placed in FLOORS


def test_imports_point_down_only() -> None:
    upward = []
    for name, targets in graph().items():
        for target in targets:
            if target == "convlens" or floor(target) > floor(name):
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_no_cycles() -> None:
    edges = graph()
    # Tarjan's strongly connected components; any component of two or more modules is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from convlens.ops import conv2d\n", {"convlens.ops"}),
        ("from convlens.ops import windows\n", {"convlens.ops.windows"}),
        ("from . import windows\n", {"convlens.ops.windows"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from convlens.models import Sequential\n", set()),
        ("def f():\n    import convlens.lab.summary\n", {"convlens.lab.summary"}),
    ],
)
def test_the_reader_itself(source: str, expected: set[str], tmp_path: Path) -> None:
    path = tmp_path / "conv.py"
    path.write_text(source)
    known = {"convlens.ops", "convlens.ops.windows", "convlens.lab.summary", "convlens.models"}
    assert imports("convlens.ops.conv", path, known) == expected
