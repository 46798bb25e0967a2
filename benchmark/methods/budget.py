"""Training budgets as users type them: ``3min``, ``90s``, ``1h``, ``500steps``, ``10epochs``, ``2epochs,5min``.

Contract of :func:`parse_budget`: comma-separated parts, each a positive number directly followed by (or
separated by spaces from) a unit; case and surrounding spaces do not matter. Units: ``s``/``sec``/``seconds``,
``min``/``m``/``minutes``, ``h``/``hours`` (fractions allowed: ``1.5h``), ``steps``/``step``, ``epochs``/``epoch``/
``ep`` (whole numbers only). Several parts combine into one :class:`~benchmark.specs.Budget`; whichever limit is
reached first ends training. Times add up (``1h,30min`` is 5400 s); a step or epoch limit given twice is an
error. Anything else raises :class:`~benchmark.errors.OptionError` naming the text and giving examples.
:func:`format_budget` writes a budget back in the same syntax (``parse_budget(format_budget(b)) == b``).
"""

from __future__ import annotations

import math
import re

from benchmark.errors import OptionError
from benchmark.specs import Budget

EXAMPLES = "write e.g. 3min, 90s, 500steps or 10epochs (or several, whichever ends first: 2epochs,5min)"
_SECONDS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
            "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
            "h": 3600.0, "hr": 3600.0, "hrs": 3600.0, "hour": 3600.0, "hours": 3600.0}
_COUNTS = {"step": "steps", "steps": "steps", "epoch": "epochs", "epochs": "epochs", "ep": "epochs"}
_PART = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*([a-z]+)\s*$")


def _fail(text: str, why: str) -> OptionError:
    return OptionError(f"budget {text!r}: {why}; {EXAMPLES}")


def _parse_part(text: str, part: str) -> tuple[str, float]:
    """("seconds" | "steps" | "epochs", value) of one part such as ``90s``."""
    match = _PART.match(part.lower())
    if not match:
        raise _fail(text, f"{part.strip()!r} is not a number with a unit")
    number, exponent, unit = match.groups()
    value = float(number) * (10.0 ** int(exponent) if exponent else 1.0)
    if not math.isfinite(value) or value <= 0:
        raise _fail(text, f"{part.strip()!r} must be positive")
    if unit in _SECONDS:
        return "seconds", value * _SECONDS[unit]
    if unit in _COUNTS:
        if value != int(value):
            raise _fail(text, f"{part.strip()!r}: {_COUNTS[unit]} must be a whole number")
        return _COUNTS[unit], value
    raise _fail(text, f"unknown unit {unit!r} in {part.strip()!r}")


def parse_budget(text: str) -> Budget:
    """The :class:`Budget` a string such as ``2epochs,5min`` describes (see the module docstring)."""
    if not isinstance(text, str) or not text.strip():
        raise _fail(str(text), "it is empty")
    limits: dict[str, float] = {}
    for part in text.split(","):
        kind, value = _parse_part(text, part)
        if kind in limits and kind != "seconds":
            raise _fail(text, f"{kind} given twice")
        limits[kind] = limits.get(kind, 0.0) + value
    return Budget(epochs=int(limits["epochs"]) if "epochs" in limits else None,
                  steps=int(limits["steps"]) if "steps" in limits else None,
                  seconds=limits.get("seconds"))


def _format_seconds(seconds: float) -> str:
    for unit, size in (("h", 3600.0), ("min", 60.0)):
        if seconds >= size and (seconds / size) == int(seconds / size):
            return f"{int(seconds / size)}{unit}"
    return f"{seconds:g}s" if float(f"{seconds:g}") == seconds else f"{seconds!r}s"


def format_budget(budget: Budget) -> str:
    """``budget`` in :func:`parse_budget`'s syntax: epochs, then steps, then time (``2epochs,5min``)."""
    parts = []
    if budget.epochs is not None:
        parts.append(f"{budget.epochs}epochs")
    if budget.steps is not None:
        parts.append(f"{budget.steps}steps")
    if budget.seconds is not None:
        parts.append(_format_seconds(budget.seconds))
    return ",".join(parts)
