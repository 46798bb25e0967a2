"""JSON from files repbench did not necessarily write: parsed with guards, so a hostile or damaged file is a
one-line error rather than a traceback or a silently wrong value.

:func:`loads` is ``json.loads`` that refuses (with :class:`UnsafeJSON`, a ``ValueError``) integers of more than
:data:`MAX_INT_DIGITS` digits (they overflow float arithmetic, or exceed Python's 4300-digit limit), objects
with a duplicate key (``json`` would silently keep the last), and values nested deeper than :data:`MAX_DEPTH`.
Callers catch ``ValueError`` as they do for invalid JSON and name their file.
"""

from __future__ import annotations

import json
from typing import Any

#: 2**63 has 19 digits: no count, seed or size in a record comes near it.
MAX_INT_DIGITS = 19
#: Records nest a few levels (plugin ``info`` blocks a few more); nothing legitimate comes near this.
MAX_DEPTH = 64


class UnsafeJSON(ValueError):
    """Valid JSON repbench refuses to read; the message says what and where (a JSON path)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise UnsafeJSON(f"an integer of {len(text.lstrip('-'))} digits ({text[:12]}...): not a count or a score")
    return int(text)


def _parse_int_as_float(text: str) -> int | float:
    # a float of an over-long integer is +-inf or a huge number: the caller's range check names the field
    return float(text) if len(text.lstrip("-")) > MAX_INT_DIGITS else int(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise UnsafeJSON(f"duplicate key {key[:60]!r} in one object (which one is meant?)")
        out[key] = value
    return out


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`UnsafeJSON` when ``value`` nests lists/objects deeper than ``limit`` (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise UnsafeJSON(f"values nested more than {limit} levels deep")
        stack.extend((child, depth + 1) for child in children)


def loads(text: str | bytes, *, huge_ints: str = "reject") -> Any:
    """``json.loads`` with the guards above; every failure is a ``ValueError`` (JSONDecodeError or
    :class:`UnsafeJSON`). ``huge_ints="float"`` reads an over-long integer as a float (``inf`` beyond float
    range) instead, for callers whose own range checks name the field at fault."""
    parse_int = _parse_int_as_float if huge_ints == "float" else _parse_int
    try:
        value = json.loads(text, parse_int=parse_int, object_pairs_hook=_no_duplicates)
    except RecursionError as exc:
        raise UnsafeJSON(f"values nested too deeply (more than {MAX_DEPTH} levels)") from exc
    check_depth(value)
    return value
