"""Spec strings users type: ``name`` or ``name[key=value,key=value]``, comma-separated in lists.

``pixels,timm/resnet18[pretrained=false,img_size=64]`` is two encoders. Values are coerced to the type of the
option's declared default (``true/false`` for booleans; ``a+b+c`` for a list), so ``k=10+20`` is the list [10, 20].
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class SpecStringError(ValueError):
    """A spec string or option that cannot be parsed; the message says which and why."""


@dataclass(frozen=True)
class Requested:
    """One parsed spec string: the name and the raw ``key=value`` options as typed."""

    name: str
    options: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return f"{self.name}[{','.join(f'{k}={v}' for k, v in self.options.items())}]"


def split_list(text: str) -> list[str]:
    """Split on commas that are outside brackets: ``a[x=1,y=2],b`` -> ``['a[x=1,y=2]', 'b']``."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise SpecStringError(f"unbalanced ']' in {text!r}")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise SpecStringError(f"unclosed '[' in {text!r}")
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def parse(text: str) -> Requested:
    """Parse one spec string (``name`` or ``name[k=v,...]``)."""
    text = text.strip()
    if "[" not in text:
        if "]" in text:
            raise SpecStringError(f"unbalanced ']' in {text!r}")
        return Requested(text)
    if not text.endswith("]"):
        raise SpecStringError(f"{text!r}: options go in brackets at the end, like name[key=value,key=value]")
    name, _, inner = text[:-1].partition("[")
    options: dict[str, str] = {}
    for pair in split_list(inner):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise SpecStringError(f"{text!r}: option {pair!r} is not key=value")
        key = key.strip()
        if key in options:
            raise SpecStringError(f"{text!r}: option {key!r} given twice")
        options[key] = value.strip()
    if not name.strip():
        raise SpecStringError(f"{text!r}: missing a name before '['")
    return Requested(name.strip(), options)


def parse_list(text: str | list[str]) -> list[Requested]:
    """Parse a comma-separated list (or several such strings, e.g. from a repeated flag)."""
    texts = [text] if isinstance(text, str) else text
    return [parse(item) for t in texts for item in split_list(t)]


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _coerce_scalar(raw: str, like: Any, where: str) -> Any:
    if isinstance(like, bool):
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise SpecStringError(f"{where}: expected true or false, got {raw!r}")
    try:
        if isinstance(like, int):
            return int(raw)
        if isinstance(like, float):
            return float(raw)
    except ValueError:
        raise SpecStringError(f"{where}: expected a {type(like).__name__}, got {raw!r}") from None
    if like is None:
        return _guess(raw)
    return raw


def _guess(raw: str) -> Any:
    low = raw.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def coerce_options(owner: str, raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Resolve user options against declared defaults: reject unknown keys, coerce types, fill the rest.

    ``owner`` names the spec in error messages (``encoder 'timm/resnet18'``).
    """
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
        raise SpecStringError(f"{owner}: unknown option(s) {', '.join(unknown)}; valid options (defaults): {valid}")
    resolved = dict(defaults)
    for key, value in raw.items():
        like = defaults[key]
        where = f"{owner} option {key}"
        if not isinstance(value, str):
            resolved[key] = value
        elif isinstance(like, (list, tuple)):
            elem = like[0] if like else None
            resolved[key] = [_coerce_scalar(v, elem, where) for v in value.split("+") if v]
        elif like is not None and not isinstance(like, (bool, int, float, str)):
            raise SpecStringError(f"{where}: cannot be set from the command line")
        else:
            # an option that defaults to None takes whatever the text looks like; others keep their type, except
            # that a number may be set to none
            if isinstance(like, (int, float)) and not isinstance(like, bool) and value.lower() in ("none", "null"):
                resolved[key] = None
            else:
                resolved[key] = _coerce_scalar(value, like, where)
    return resolved
