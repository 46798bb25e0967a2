"""Spec strings users type: ``name`` or ``name[key=value,key=value]``, comma-separated in lists.

``pixels,timm/resnet18[pretrained=false,img_size=64]`` is two encoders. Values are coerced by the type annotation
of the loader's or evaluator's parameter (``int | None``, ``Sequence[float]``, ``bool``, ``Literal[...]``), or,
for a parameter without one, by the type of its declared default (``true/false`` for booleans; ``a+b+c`` for a
list), so ``k=10+20`` is the list [10, 20]. ``none`` sets an optional value to None.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import OptionError

#: A spec string or option that cannot be parsed or used; the message says which and why.
SpecStringError = OptionError


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
_NONE = {"none", "null"}
_SEQUENCES = (list, tuple, Sequence, typing.Sequence)


def option_hints(fn: Callable[..., object]) -> dict[str, object]:
    """The resolved type annotations of ``fn``'s parameters (a class: its ``__init__``); {} when they cannot be
    resolved (a lambda, names only known to a type checker)."""
    target = fn.__init__ if inspect.isclass(fn) else fn
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable forward references: fall back to the defaults' types
        return {}
    hints.pop("return", None)
    return hints


def _is_union(hint: object) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def _is_sequence(hint: object) -> bool:
    return hint in _SEQUENCES or typing.get_origin(hint) in _SEQUENCES


def _scalar(raw: str, kind: object, where: str) -> object:
    """``raw`` as a bool, int, float, str or one of a Literal's values; OptionError in plain words otherwise."""
    if typing.get_origin(kind) is typing.Literal:
        choices = typing.get_args(kind)
        for choice in choices:
            if raw == str(choice):
                return choice
        raise OptionError(f"{where}: expected one of {', '.join(map(str, choices))}, got {raw!r}")
    if kind is bool:
        low = raw.lower()
        if low in _TRUE or low in _FALSE:
            return low in _TRUE
        raise OptionError(f"{where}: expected true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise OptionError(f"{where}: expected an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise OptionError(f"{where}: expected a number, got {raw!r}") from None
    if kind is str:
        return raw
    return _guess(raw)  # Any, or a type the command line cannot spell: take what the text looks like


def _by_hint(raw: str, hint: object, where: str) -> object:
    """Coerce ``raw`` by a type annotation: unions try their members (a ``+`` picks the list member first)."""
    if _is_union(hint):
        members = [m for m in typing.get_args(hint) if m is not type(None)]
        if raw.lower() in _NONE and len(members) < len(typing.get_args(hint)):
            return None
        members.sort(key=lambda m: _is_sequence(m) != ("+" in raw))
        errors = []
        for member in members:
            try:
                return _by_hint(raw, member, where)
            except OptionError as exc:
                errors.append(str(exc).removeprefix(f"{where}: "))
        raise OptionError(f"{where}: {' or '.join(errors)}")
    if _is_sequence(hint):
        args = typing.get_args(hint)
        elem = args[0] if args else str
        return [_scalar(v, elem, where) for v in raw.split("+") if v]
    return _scalar(raw, hint, where)


def _by_default(raw: str, like: object, where: str) -> object:
    """Coerce ``raw`` like the declared default (for parameters without an annotation)."""
    if isinstance(like, (list, tuple)):
        elem: object = type(like[0]) if like else object
        return [_scalar(v, elem, where) for v in raw.split("+") if v]
    if like is None:
        return _guess(raw)
    if not isinstance(like, (bool, int, float, str)):
        raise OptionError(f"{where}: cannot be set from the command line")
    if isinstance(like, (int, float)) and not isinstance(like, bool) and raw.lower() in _NONE:
        return None  # a number may be switched off with none
    return _scalar(raw, type(like), where)


def _guess(raw: str) -> object:
    low = raw.lower()
    if low in _NONE:
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def coerce_options(owner: str, raw: Mapping[str, object], defaults: Mapping[str, object],
                   hints: Mapping[str, object] | None = None) -> dict[str, object]:
    """Resolve user options against declared defaults: reject unknown keys, coerce types, fill the rest.

    ``owner`` names the spec in error messages (``encoder 'timm/resnet18'``). ``hints`` are the parameters'
    type annotations (:func:`option_hints`); an option without one is coerced like its default.
    """
    unknown = sorted(set(raw) - set(defaults))
    if unknown:
        valid = ", ".join(f"{k}={v!r}" for k, v in defaults.items()) or "none"
        raise OptionError(f"{owner}: unknown option(s) {', '.join(unknown)}; valid options (defaults): {valid}")
    hints = hints or {}
    resolved = dict(defaults)
    for key, value in raw.items():
        where = f"{owner} option {key}"
        if not isinstance(value, str):
            resolved[key] = value
        elif key in hints and hints[key] is not typing.Any:
            resolved[key] = _by_hint(value, hints[key], where)
        else:
            resolved[key] = _by_default(value, defaults[key], where)
    return resolved


def check_spec_name(kind: str, name: str) -> None:
    """A spec's ``name`` can be typed in a spec string: non-empty, no spaces, ``,``, ``=`` or brackets."""
    if not isinstance(name, str) or not name or name != name.strip() or any(c in name for c in "[],= "):
        raise ValueError(f"{kind} name {name!r} is malformed: use a non-empty string without spaces, ',', '=' or brackets")


def fill_defaults(spec: Any, fn: Callable[..., Any]) -> None:
    """A spec's ``defaults=None`` (the default) means: read them from ``fn``'s signature (:func:`defaults_of`;
    for a :class:`~benchmark.specs.lazy.Lazy` function, from its source, without importing it)."""
    if spec.defaults is None:
        static = getattr(fn, "static_defaults", None)  # a benchmark.specs.lazy.Lazy: read without importing it
        object.__setattr__(spec, "defaults", static() if callable(static) else defaults_of(fn))


def defaults_of(fn: Callable[..., Any]) -> dict[str, Any]:
    """The options of a loader or evaluator and their defaults, read from its signature: the one source of truth.

    Every parameter with a default is an option (tuples become lists, as JSON and the command line give them);
    parameters without one (``task``, ``variant``) and ``*args`` / ``**kwargs`` are not.
    """
    out: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is p.empty:
            continue
        out[p.name] = list(p.default) if isinstance(p.default, tuple) else p.default
    return out


def is_family(name: str) -> bool:
    """True for names like ``timm/`` or ``imagefolder:`` that serve every name starting with them."""
    return name.endswith(("/", ":"))
