"""The house rules of ``benchmark/``, read from the source with ``ast`` so they stay true.

* No import circles. Every import counts: module level, inside functions (lazy imports) and under
  ``if TYPE_CHECKING:``: a lazy import only hides a circle from the interpreter, not from the reader.
* Layers import downwards only (``LAYERS``, lowest first). A module may import its own layer or a lower one; a kernel
  two layers share lives in the lower one.
* Plugins do not import each other: a module that registers hooks (a ``@hookimpl`` function) is loaded by the
  plugin manager, and what two plugins share (the kNN and logistic-regression kernels, option checks) lives in a
  module that registers nothing.
* No private name crosses a module boundary (``from x import _y``): what another module needs is public.
* No module over ``MAX_LINES`` lines; at most ``MAX_TOP_LEVEL`` modules at the top of the package (``__init__`` and
  ``__main__`` are the package's own files and do not count).

``from pkg import sub`` where ``sub`` is a submodule is an import of ``pkg.sub``; any other ``from pkg import name``
is an import of ``pkg`` (its ``__init__``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"
MAX_LINES = 450
MAX_TOP_LEVEL = 12

# Lowest first. A name is a module or a package prefix; the longest matching prefix wins.
LAYERS: list[tuple[str, ...]] = [
    ("benchmark.errors", "benchmark.specs", "benchmark.options", "benchmark.hookspecs", "benchmark.storage",
     "benchmark.checks"),
    ("benchmark.plugins", "benchmark.catalog", "benchmark.runtime"),
    ("benchmark.datasets", "benchmark.encoders"),
    ("benchmark.features",),
    ("benchmark.protocols", "benchmark.methods"),
    ("benchmark.plan",),
    ("benchmark.results",),
    # executors: a plan run cell by cell, a pretraining run (methods.runs), a throughput sweep
    ("benchmark.runner", "benchmark.runner_ray", "benchmark.methods.runs", "benchmark.throughput"),
    ("benchmark.leaderboards",),
    # front ends: the command line and the Python API behind ``import repbench`` (benchmark.api)
    ("benchmark.testing", "benchmark.cli", "benchmark.api", "benchmark.__main__", "benchmark"),  # "benchmark": the __init__ only
]


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module
    line: int
    private: str = ""  # a private name imported from ``target``, if any


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES and alias.name != module:
                    yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            if base.split(".")[0] != "benchmark":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in MODULES else base
                if target in MODULES and target != module:
                    dunder = alias.name.startswith("__") and alias.name.endswith("__")
                    private = alias.name if alias.name.startswith("_") and not dunder and sub not in MODULES else ""
                    yield Import(module, target, node.lineno, private)


IMPORTS = [imp for module, path in sorted(MODULES.items()) for imp in _imports(module, path)]


def _layer(module: str) -> int:
    best, rank = -1, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            inside = module == name or (name != "benchmark" and module.startswith(name + "."))
            if inside and len(name) > best:
                best, rank = len(name), i
    return rank


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walker_sees_the_package() -> None:
    # the rules below are only as good as the graph: it must hold the imports we know are there
    assert "benchmark.cli" in MODULES and "benchmark.protocols.knn" in MODULES
    assert any(i.source == "benchmark.protocols.knn" and i.target == "benchmark.errors" for i in IMPORTS)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles() -> None:
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        edges.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(edges) == []


def test_every_module_has_a_layer() -> None:
    assert [m for m in MODULES if _layer(m) < 0] == []


def test_layers_import_downwards() -> None:
    upward = [f"{i.source}:{i.line} imports {i.target}" for i in IMPORTS if _layer(i.target) > _layer(i.source)]
    assert upward == []


def _is_plugin(path: Path) -> bool:
    """A module with @hookimpl functions, at the top or in a class (each class a plugin: benchmark.*.builtin)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [*tree.body, *(n for c in tree.body if isinstance(c, ast.ClassDef) for n in c.body)]
    return any(isinstance(node, ast.FunctionDef) and any(ast.unparse(d) == "hookimpl" for d in node.decorator_list)
               for node in nodes)


PLUGINS = {module for module, path in MODULES.items() if _is_plugin(path)}


def test_plugins_do_not_import_plugins() -> None:
    assert {"benchmark.protocols.builtin", "benchmark.encoders.builtin", "benchmark.datasets.vision"} <= PLUGINS
    assert "benchmark.protocols.neighbors" not in PLUGINS
    crossing = [f"{i.source}:{i.line} imports {i.target}" for i in IMPORTS if i.source in PLUGINS and i.target in PLUGINS]
    assert crossing == []


def test_no_private_names_across_modules() -> None:
    crossing = [f"{i.source}:{i.line} imports {i.private} from {i.target}" for i in IMPORTS if i.private]
    assert crossing == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_short(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def test_few_top_level_modules() -> None:
    top = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in {"__init__", "__main__"})
    assert len(top) <= MAX_TOP_LEVEL, top
