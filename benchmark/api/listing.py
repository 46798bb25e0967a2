"""``repbench list [KIND] [PATTERN]``: the registered names as tables that fit 120 columns.

KIND may be singular or plural (``encoder``, ``encoders``) or left out (every kind). PATTERN is an fnmatch
pattern over names (``'timm/*resnet*'``); a family that can enumerate its variants (``timm/``) lists the
matching ones. The "available" column says whether a spec's optional packages are installed.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from collections.abc import Sequence
from typing import Any

from benchmark.catalog import SPEC_KINDS, Catalog
from benchmark.errors import OptionError
from benchmark.specs import is_family

#: The widest table ``repbench list`` prints.
WIDTH = 120
_ALIASES = {k[:-1]: k for k in SPEC_KINDS}


def kind_of(text: str) -> str:
    """``encoders`` for ``encoder`` or ``encoders``; OptionError naming the kinds otherwise."""
    kind = _ALIASES.get(text, text)
    if kind not in SPEC_KINDS:
        raise OptionError(f"repbench list {text}: unknown kind; use one of {', '.join(SPEC_KINDS)} (or nothing for all)")
    return kind


def available(spec: Any) -> str:
    """``yes``, or ``no: pip install <missing>`` for a spec whose optional packages are not installed."""
    missing = [m for m in getattr(spec, "requires", ()) if importlib.util.find_spec(m) is None]
    return "yes" if not missing else f"no: pip install {' '.join(m.replace('_', '-') for m in missing)}"


def rows(catalog: Catalog, kind: str, pattern: str | None) -> list[list[str]]:
    out = []
    for name in catalog.names(kind):
        spec = catalog.specs[kind][name]
        shown = name + "<name>" if is_family(name) else name
        variants = getattr(spec, "list_variants", None)
        if pattern is not None and is_family(name) and variants is not None and pattern.startswith(name):
            names = [name + v for v in variants(pattern[len(name):])]
        elif pattern is None or fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(shown, pattern):
            names = [shown]
        else:
            continue
        extra = getattr(spec, "modality", None) or ",".join(getattr(spec, "modalities", ()))
        kinds = (getattr(spec, "kind", None),) if kind == "datasets" else getattr(spec, "kinds", ())
        if kinds and kinds != ("classification",):  # task kinds (benchmark.datasets.pairs): say the others
            extra += f" ({', '.join(k for k in kinds if k)})"
        defaults = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        if kind == "suites":  # a suite has no options: its cells and how it ranks instead
            extra = ""
            defaults = (f"datasets: {', '.join(spec.datasets)}; protocols: {', '.join(spec.protocols)}; "
                        f"ranked by {spec.aggregation}" + (f" (baseline {spec.baseline})" if spec.baseline else ""))
        plugin = str(catalog.plugin_of(kind, spec))
        if names != [shown]:  # a family's variants: its options and description once, in its own row
            out += [[n, extra, plugin, available(spec), f"as {shown}", ""] for n in names]
        else:
            out.append([shown, extra, plugin, available(spec), defaults, spec.description])
    return out


HEADERS = ["name", "modality", "plugin", "available", "options (defaults)", "description"]
#: Column widths of the wrapped table (name, modality, plugin, available, options, description).
WIDTHS = [26, 8, 16, 10, 24, 22]


#: Suites have no modality and no options: their cells and ranking get the room.
SUITE_HEADERS = ["name", "plugin", "available", "cells and ranking", "description"]
SUITE_WIDTHS = [24, 16, 10, 46, 14]


def table(rows_: Sequence[Sequence[str]], kind: str = "encoders") -> str:
    """A table whose lines stay within :data:`WIDTH` columns: long cells wrap."""
    from tabulate import tabulate

    headers, widths = HEADERS, WIDTHS
    if kind == "suites":
        headers, widths = SUITE_HEADERS, SUITE_WIDTHS
        rows_ = [[r[0], *r[2:]] for r in rows_]
    return tabulate(rows_, headers=headers, tablefmt="simple", maxcolwidths=widths, maxheadercolwidths=widths)


def render(catalog: Catalog, kind: str | None, pattern: str | None) -> str:
    kinds = [kind_of(kind)] if kind else list(SPEC_KINDS)
    parts = []
    for k in kinds:
        found = rows(catalog, k, pattern)
        if kind is None and not found:
            continue
        head = f"{k}" + (f" matching {pattern!r}" if pattern else "")
        parts.append(f"{head}\n\n{table(found, k)}" if found else f"no {k} match {pattern!r}" if pattern
                     else f"no {k} registered")
    return "\n\n".join(parts) if parts else f"nothing matches {pattern!r}"
