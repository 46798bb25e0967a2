"""``Lazy("package.module:function")``: a spec's callable named by where it lives, imported on its first call.

A plugin whose code imports torch (or anything slow) at the top can still register in milliseconds: its hook
lives in a light module and names the heavy functions with :class:`Lazy` instead of importing them, so
``repbench list`` and ``--help`` never import the heavy module, and ``repbench eval`` imports it when a cell first
loads the encoder (or validates its options). The built-in plugins register this way
(:mod:`benchmark.encoders.builtin`, :mod:`benchmark.protocols.builtin`, :mod:`benchmark.methods.builtin`); a
third-party plugin may do the same, or import its code at the top and pay that import once per run.

A spec's ``defaults=None`` reads the options from the function's signature (:func:`benchmark.options.defaults_of`).
For a :class:`Lazy` function they are read from its source with :mod:`ast`, without importing it: literal defaults,
and names bound to literals at the top of that module (or imported there from another module, followed). A default
that is none of these (a call, an attribute) makes :meth:`Lazy.static_defaults` import the module after all: still
right, only slower (tests/test_cli_startup.py checks that no built-in needs it).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

_UNREAD = object()


class Lazy:
    """A callable standing for ``module:attribute``; the first call imports the module and calls through.

    Equal (and hashing) by target; pickles as its target, so a spec holding one can cross to DataLoader workers.
    """

    def __init__(self, target: str) -> None:
        module, sep, attr = target.partition(":")
        if not sep or not module or not attr.isidentifier():
            raise ValueError(f"Lazy({target!r}): name the function as 'package.module:function'")
        self.target = target
        self.module, self.attr = module, attr
        self._resolved: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        """The function itself (importing its module the first time)."""
        if self._resolved is None:
            fn = getattr(importlib.import_module(self.module), self.attr)
            if not callable(fn):
                raise TypeError(f"Lazy({self.target!r}): {self.attr} is not callable")
            self._resolved = fn
        return self._resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def static_defaults(self) -> dict[str, Any]:
        """The keyword parameters with defaults, as :func:`~benchmark.options.defaults_of` reads them, from the
        source when it can (no import), else from the imported function."""
        from benchmark.options import defaults_of

        found = _source_defaults(self.module, self.attr)
        return found if found is not None else defaults_of(self.resolve())

    @property
    def __signature__(self) -> inspect.Signature:
        """The function's own signature (``inspect.signature(lazy)`` imports it), as a plain function would give."""
        return inspect.signature(self.resolve())

    def __repr__(self) -> str:
        return f"Lazy({self.target!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Lazy) and other.target == self.target

    def __hash__(self) -> int:
        return hash(("Lazy", self.target))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lazy, (self.target,))


def _module_tree(module: str) -> tuple[ast.Module, str] | None:
    """The parsed source of ``module`` and its package (for relative imports), found without running it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    package = module if spec.submodule_search_locations is not None else module.rpartition(".")[0]
    return ast.parse(Path(spec.origin).read_text(encoding="utf-8")), package


def _top_level_value(module: str, name: str, depth: int = 0) -> Any:
    """The literal ``name`` is bound to at the top of ``module`` (following ``from x import name``), or _UNREAD."""
    parsed = _module_tree(module) if depth < 4 else None
    if parsed is None:
        return _UNREAD
    tree, package = parsed
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return _literal(module, node.value, depth)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name:
            return _literal(module, node.value, depth) if node.value is not None else _UNREAD
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    source = importlib.util.resolve_name("." * node.level + (node.module or ""), package) \
                        if node.level else node.module or ""
                    return _top_level_value(source, alias.name, depth + 1)
    return _UNREAD


def _literal(module: str, node: ast.expr | None, depth: int) -> Any:
    if node is None:
        return _UNREAD
    if isinstance(node, ast.Name):
        return _top_level_value(module, node.id, depth + 1)
    if isinstance(node, ast.Tuple):
        items = [_literal(module, e, depth) for e in node.elts]
        return _UNREAD if any(i is _UNREAD for i in items) else tuple(items)
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNREAD


def _source_defaults(module: str, attr: str) -> dict[str, Any] | None:
    """``defaults_of`` for a top-level ``def attr`` (or ``class attr``'s ``__init__``) of ``module``, read from
    source; None when it cannot be."""
    parsed = _module_tree(module)
    if parsed is None:
        return None
    node = next((n for n in parsed[0].body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == attr),
                None)
    if isinstance(node, ast.ClassDef):  # a class is called through its __init__ (self has no default)
        node = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
    if node is None:
        return None
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    pairs = list(zip(positional[len(positional) - len(args.defaults):], args.defaults, strict=True))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
    out: dict[str, Any] = {}
    for arg, default in pairs:
        value = _literal(module, default, 0)
        if value is _UNREAD:
            return None
        out[arg.arg] = list(value) if isinstance(value, tuple) else value
    return out
