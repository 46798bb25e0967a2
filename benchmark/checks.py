"""Checks shared by the built-in protocols and datasets: option values and features at protocol entry.

Option checks (:func:`need_int`, :func:`need_number`, :func:`need_choice`, :func:`need_str`) raise
:class:`~benchmark.errors.OptionError` with one message shape, ``"<owner>: option <name> must be <what>, got
<value>"`` (``owner`` is ``"protocol 'knn'"`` or ``"dataset 'digits'"``). Spec validators are built from them, so
the same check runs at plan time (``Catalog.resolve`` calls ``spec.validate``) and when the evaluator or loader is
called directly.

Feature checks (:func:`check_features`, :func:`check_splits`) raise :class:`~benchmark.errors.ContractError`
naming the protocol, the split and the cause, so broken features (NaN from an encoder or a corrupted cache, a
wrong shape) stop a cell instead of scoring at chance level. :func:`integer_labels` is the label check of
:class:`~benchmark.specs.Split`.
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np

from benchmark.errors import ContractError, OptionError
from benchmark.storage.chunked import nonfinite_rows

#: What to do about features that break the contract (they come from the encoder or from the feature cache).
FEATURES_FIX = "the encoder or the feature cache is broken: rerun with --no-cache"


# --- option values ---------------------------------------------------------------------------------------------
def bad_option(owner: str, name: str, what: str, value: Any) -> OptionError:
    """The OptionError for option ``name`` of ``owner`` whose ``value`` is not ``what``."""
    return OptionError(f"{owner}: option {name} must be {what}, got {value!r}")


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def is_int(value: Any) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, Real) and not isinstance(value, bool)


def need_int(owner: str, name: str, value: Any, low: int | None = None, high: int | None = None, *,
             optional: bool = False) -> None:
    """``value`` is an integer in ``[low, high]`` (either bound may be None), or None when ``optional``."""
    if optional and value is None:
        return
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        bounds = [f">= {low}"] * (low is not None) + [f"<= {high}"] * (high is not None)
        raise bad_option(owner, name, _words("an integer", " and ".join(bounds), "or none" * optional), value)


def need_number(owner: str, name: str, value: Any, *, gt: float | None = None, ge: float | None = None,
                lt: float | None = None, le: float | None = None, optional: bool = False, what: str = "") -> None:
    """``value`` is a finite real number within the given bounds, or None when ``optional``.

    ``what`` overrides the description in the message (``"> 0 (or none to sweep Cs)"``).
    """
    if optional and value is None:
        return
    ok = is_number(value) and bool(np.isfinite(value))
    parts = []
    for op, bound in ((">", gt), (">=", ge), ("<", lt), ("<=", le)):
        if bound is None:
            continue
        parts.append(f"{op} {bound:g}")
        if ok:
            ok = {">": value > bound, ">=": value >= bound, "<": value < bound, "<=": value <= bound}[op]
    if not ok:
        desc = what or _words("a number", " and ".join(parts), "or none" * optional)
        raise bad_option(owner, name, desc, value)


def need_fraction(owner: str, name: str, value: Any) -> None:
    """``value`` lies strictly between 0 and 1."""
    need_number(owner, name, value, gt=0, lt=1, what="a number in (0, 1)")


def need_choice(owner: str, name: str, value: Any, choices: Iterable[Any]) -> None:
    """``value`` is one of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, (str, int, float, bool)) or value not in choices:
        raise bad_option(owner, name, f"one of {', '.join(map(str, choices))}", value)


def need_bool(owner: str, name: str, value: Any) -> None:
    """``value`` is True or False (numpy bools too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise bad_option(owner, name, "true or false", value)


def need_str(owner: str, name: str, value: Any, *, optional: bool = False, empty: bool = True) -> None:
    """``value`` is a string (non-empty unless ``empty``), or None when ``optional``."""
    if optional and value is None:
        return
    if not isinstance(value, str) or (not empty and not value):
        what = ("a string" if empty else "a non-empty string") + (" or none" if optional else "")
        raise bad_option(owner, name, what, value)


def need_int_list(owner: str, name: str, value: Any, low: int = 1, *, allow_empty: bool = True,
                  allow_scalar: bool = True) -> None:
    """``value`` is a list (or tuple) of integers >= ``low``, or one such integer when ``allow_scalar``."""
    if allow_scalar and is_int(value):
        value_list: list[Any] = [value]
    elif isinstance(value, (list, tuple)):
        value_list = list(value)
    else:
        value_list = [None]  # not a list: fails below
    if (not value_list and not allow_empty) or not all(is_int(v) and v >= low for v in value_list):
        what = f"{'an integer or ' if allow_scalar else ''}a{' non-empty' if not allow_empty else ''} list of " \
               f"integers >= {low}"
        raise bad_option(owner, name, what, value)


def need_number_list(owner: str, name: str, value: Any, *, gt: float = 0, allow_empty: bool = False) -> None:
    """``value`` is a list (or tuple) of finite numbers > ``gt``, non-empty unless ``allow_empty``."""
    items = list(value) if isinstance(value, (list, tuple)) else None
    if items is None or (not items and not allow_empty) or \
            not all(is_number(v) and np.isfinite(v) and v > gt for v in items):
        what = f"a{' non-empty' if not allow_empty else ''} list of numbers > {gt:g}"
        raise bad_option(owner, name, what, value)


# --- features at protocol entry -------------------------------------------------------------------------------
def _rows(mask: np.ndarray, shown: int = 5) -> str:
    rows = np.flatnonzero(mask)
    text = ", ".join(str(int(r)) for r in rows[:shown])
    return text + (f", ... ({len(rows)} rows)" if len(rows) > shown else "")


def check_features(protocol: str, split: str, x: Any, labels: Any = None, *, width: int | None = None) -> None:
    """Raise ContractError unless ``x`` is a 2-D numeric array of finite values (``width`` columns when given)
    with one label per row (when ``labels`` are given). The message names the protocol, the split and the cause.
    """
    x = np.asarray(x)
    where = f"protocol {protocol!r}: {split} features"
    if x.ndim != 2:
        raise ContractError(f"{where} must be a 2-D (samples, dim) array, got shape {x.shape}; {FEATURES_FIX}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ContractError(f"{where} must be numbers, got dtype {x.dtype}; {FEATURES_FIX}")
    if width is not None and x.shape[1] != width:
        raise ContractError(f"{where} have {x.shape[1]} dimensions but the train features have {width}; "
                            f"{FEATURES_FIX}")
    if labels is not None:
        y = np.asarray(labels)
        if y.ndim != 1 or len(y) != len(x):
            raise ContractError(f"{where}: {len(x)} rows but labels of shape {y.shape}; the dataset or the "
                                f"feature cache is broken: rerun with --no-cache")
    bad_rows, count = nonfinite_rows(x)  # in row chunks: no mask as large as the features
    if count:
        mask = np.zeros(len(x), bool)
        mask[bad_rows] = True
        raise ContractError(f"{where} have {count} non-finite values (rows {_rows(mask)}); {FEATURES_FIX}")
    if np.issubdtype(x.dtype, np.inexact):
        check_scale(where, x)


#: Features whose largest magnitude lies outside [MIN_SCALE, MAX_SCALE] cannot be compared in float32: squared
#: distances and dot products overflow to inf above (sqrt(3.4e38 / dim)), or underflow to 0 below (1.2e-38).
MAX_SCALE = 1e15
MIN_SCALE = 1e-15


def check_scale(where: str, x: np.ndarray) -> None:
    """Raise ContractError when finite float features are so large or so small (all but zero) that float32
    arithmetic on them is meaningless: a protocol would score them at chance and call it ok."""
    if x.size == 0:
        return
    peak = float(max(np.max(x), -np.min(x)))
    if peak > MAX_SCALE or 0 < peak < MIN_SCALE:
        side = "overflow to inf" if peak > MAX_SCALE else "underflow to 0"
        raise ContractError(f"{where} have a largest magnitude of {peak:.3g}: float32 distances and dot products "
                            f"{side} at this scale (a chance-level score); scale the encoder's output (e.g. "
                            f"L2-normalise it) into [{MIN_SCALE:g}, {MAX_SCALE:g}]")


def check_splits(protocol: str, train: tuple[Any, Any], *others: tuple[str, Any, Any]) -> None:
    """:func:`check_features` on the ``(x, labels)`` train pair, then on each ``(split name, x, labels)``, whose
    width must equal train's (``labels`` may be None)."""
    check_features(protocol, "train", train[0], train[1])
    width = np.asarray(train[0]).shape[1]
    for split, x, labels in others:
        check_features(protocol, split, x, labels, width=width)


# --- split labels ----------------------------------------------------------------------------------------------
def integer_labels(labels: Any) -> Any:
    """A :class:`~benchmark.specs.Split`'s ``labels`` unchanged when they are integers (or bools, or floats with
    integral values), checked before any cast: ``int64`` of 1.7 would silently be 1, and of ``"cat"`` a raw
    ValueError. Raises ValueError starting ``split labels must be integer class indices``."""
    y = np.asarray(labels)
    if y.size == 0 or np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return y
    if y.dtype.kind == "f":
        bad = ~np.isfinite(y) | (y != np.round(y))
        if not bad.any():
            return y
        at = np.flatnonzero(bad.reshape(-1))[:5].tolist()
        shown = ", ".join(repr(float(v)) for v in y.reshape(-1)[at])
        raise ValueError(f"split labels must be integer class indices, got non-integer values {shown} at rows {at}")
    if y.dtype.kind == "O" and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                   for v in y.reshape(-1)):
        return y
    first = y.reshape(-1)[0]
    first = first.item() if isinstance(first, np.generic) else first
    kind = {"U": "string", "S": "bytes", "O": "mixed"}.get(y.dtype.kind, str(y.dtype))
    raise ValueError(f"split labels must be integer class indices, got {kind} values such as {first!r}: map "
                     "each class name to its index in `classes`")
