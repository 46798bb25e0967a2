"""The catalog: every spec the loaded plugins registered, validated, with who registered what.

Each ``register_*`` hook is called once per plugin (so one failing plugin is reported and skipped, not fatal).
A returned item of the wrong type, a malformed name or a duplicate name is an error naming the plugin. Lookups of
unknown names raise :class:`UnknownNameError` with "did you mean" suggestions and the command that lists them all.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from benchmark.errors import OptionError, RepbenchError, UnknownNameError
from benchmark.options import Requested, coerce_options, option_hints, parse
from benchmark.plugins import PluginFailure, PluginSet, make_plugin_manager
from benchmark.specs import DatasetSpec, EncoderSpec, MethodSpec, ProtocolSpec, SuiteSpec, is_family

#: The callable of each kind whose signature declares its options.
CALLABLES: dict[str, str] = {"encoders": "load", "datasets": "load", "protocols": "evaluate", "methods": "build",
                             "suites": "cells"}

__all__ = ["CALLABLES", "SPEC_KINDS", "Catalog", "Resolved", "UnknownNameError"]

SPEC_KINDS: dict[str, tuple[str, type]] = {
    "encoders": ("register_encoders", EncoderSpec),
    "datasets": ("register_datasets", DatasetSpec),
    "protocols": ("register_protocols", ProtocolSpec),
    "methods": ("register_methods", MethodSpec),
    "suites": ("register_suites", SuiteSpec),
}

S = TypeVar("S", EncoderSpec, DatasetSpec, ProtocolSpec, MethodSpec, SuiteSpec)


@dataclass(frozen=True)
class Resolved(Generic[S]):
    """A spec, the name as requested, and its fully resolved options (defaults + user values)."""

    spec: S
    name: str
    options: Mapping[str, Any]
    variant: str | None = None

    @property
    def label(self) -> str:
        """The canonical string for this choice: name plus every non-default option, sorted; a ``checkpoint``
        file as ``name@hash`` (records and tables never show a user's path)."""
        changed = {k: v for k, v in sorted(self.options.items()) if self.spec.defaults.get(k) != v}
        if not changed:
            return self.name
        return f"{self.name}[{','.join(f'{k}={_fmt(_shown(k, v))}' for k, v in changed.items())}]"

    @property
    def shown_options(self) -> dict[str, Any]:
        """The options as records keep them: a ``checkpoint`` file as ``name@hash`` (the path stays in the spec
        the user typed; the record keeps the file's sha256 in the encoder's ``checkpoint`` block)."""
        return {k: _shown(k, v) for k, v in self.options.items()}

    def load(self, **extra: Any) -> Any:
        """Call the spec's ``load`` with the resolved options (and ``variant`` for families)."""
        kwargs = dict(self.options, **extra)
        if self.variant is not None:
            kwargs["variant"] = self.variant
        load = getattr(self.spec, "load", None)
        if load is None:
            raise TypeError(f"{type(self.spec).__name__} {self.spec.name!r} has no load(); only encoders and "
                            "datasets are loaded")
        return load(**kwargs)


def _shown(key: str, value: Any) -> Any:
    """A ``checkpoint=`` file by its name and content hash, not by where it sits (storage.local_weights)."""
    if key == "checkpoint" and isinstance(value, str) and value:
        from benchmark.storage.local_weights import checkpoint_name

        return checkpoint_name(value)
    return value


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "+".join(_fmt(v) for v in value)
    return str(value)


@dataclass
class Catalog:
    plugins: PluginSet
    specs: dict[str, dict[str, Any]] = field(default_factory=lambda: {k: {} for k in SPEC_KINDS})
    provider: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def errors(self) -> list[PluginFailure]:
        return self.plugins.errors

    @classmethod
    def load(cls, plugins: PluginSet | None = None) -> Catalog:
        """Build the catalog from a plugin set (default: the installed plugins plus built-ins)."""
        catalog = cls(plugins or make_plugin_manager())
        for kind, (hook_name, _) in SPEC_KINDS.items():
            hook = getattr(catalog.plugins.pm.hook, hook_name)
            # built-ins first, then plugins in registration order: a clash is blamed on the newcomer
            impls = sorted(hook.get_hookimpls(), key=lambda i: not catalog._is_builtin(i.plugin_name))
            for impl in impls:
                catalog._collect(kind, impl.plugin_name, impl.function)
        return catalog

    def _is_builtin(self, plugin: str) -> bool:
        info = self.plugins.infos.get(plugin)
        return bool(info and info.builtin)

    def _collect(self, kind: str, plugin: str, function: Any) -> None:
        hook_name, spec_type = SPEC_KINDS[kind]
        info = self.plugins.infos.get(plugin)
        dist, version = (info.distribution, info.version) if info else (None, None)

        def fail(exc: BaseException) -> None:
            self.plugins.errors.append(PluginFailure(plugin, dist, version, exc, stage=hook_name))

        try:
            items = function()
        except Exception as exc:
            fail(exc)
            return
        if items is None:
            return
        if not isinstance(items, (list, tuple)):
            fail(TypeError(f"{hook_name}() must return a list of {spec_type.__name__}, got {type(items).__name__}"))
            return
        for item in items:
            if not isinstance(item, spec_type):
                fail(TypeError(f"{hook_name}() returned {item!r}, which is not a {spec_type.__name__}"))
                continue
            try:
                self.add(kind, item, plugin)  # type: ignore[arg-type]  # isinstance(item, spec_type) above
            except ValueError as exc:
                fail(exc)

    def add(self, kind: str, spec: EncoderSpec | DatasetSpec | ProtocolSpec | MethodSpec | SuiteSpec, plugin: str) -> None:
        """Register ``spec`` (of ``kind``: "encoders", "datasets", ...) as provided by ``plugin``, with the checks
        the hooks' specs get: the right type and a name nobody registered yet. A trained encoder enters a plan
        this way. Raises ValueError or TypeError naming the spec."""
        if kind not in SPEC_KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of {', '.join(SPEC_KINDS)}")
        spec_type = SPEC_KINDS[kind][1]
        if not isinstance(spec, spec_type):
            raise TypeError(f"Catalog.add({kind!r}): {spec!r} is not a {spec_type.__name__}")
        if spec.name in self.specs[kind]:
            first = self.provider[(kind, spec.name)]
            raise ValueError(f"{kind[:-1]} name {spec.name!r} is already registered by plugin {first!r}")
        self.specs[kind][spec.name] = spec
        self.provider[(kind, spec.name)] = plugin

    # --- lookups -------------------------------------------------------------------------------------------
    def names(self, kind: str) -> list[str]:
        return sorted(self.specs[kind])

    def get(self, kind: str, name: str) -> tuple[Any, str | None]:
        """The spec serving ``name`` and the family variant (None for an exact name)."""
        table = self.specs[kind]
        if name in table and not is_family(name):
            return table[name], None
        families = sorted((f for f in table if is_family(f) and name.startswith(f) and len(name) > len(f)), key=len)
        if families:
            family = families[-1]
            return table[family], name[len(family) :]
        raise UnknownNameError(self._unknown_message(kind, name))

    def _unknown_message(self, kind: str, name: str) -> str:
        known = self.names(kind)
        shown = [n + "<name>" if is_family(n) else n for n in known]
        close = difflib.get_close_matches(name, shown, n=3, cutoff=0.5)
        prefix_hits = [s for s in shown if s.split("/")[0].split(":")[0] == name.split("/")[0].split(":")[0]]
        suggestions = list(dict.fromkeys(close + prefix_hits))[:3]
        msg = f"unknown {kind[:-1]} {name!r}."
        if suggestions:
            msg += f" Did you mean {' or '.join(repr(s) for s in suggestions)}?"
        msg += f" Run `repbench list {kind}` to see them all."
        failed = [f"{e.plugin} ({type(e.error).__name__}: {e.error})" for e in self.errors]
        if failed:
            msg += (f" Note: plugin(s) failed to load and may have provided it: {'; '.join(failed)}"
                    " (`repbench plugins` shows why).")
        return msg

    def resolve(self, kind: str, requested: Requested | str) -> Resolved:
        """Look up a spec string and resolve its options against the spec's defaults."""
        req = parse(requested) if isinstance(requested, str) else requested
        spec, variant = self.get(kind, req.name)
        owner = f"{kind[:-1]} {req.name!r}"
        check = getattr(spec, "check_variant", None)
        if variant is not None and check is not None:  # refused before any work (a misspelled model, no file)
            try:
                check(variant)
            except RepbenchError:
                raise
            except (ValueError, OSError) as exc:
                raise OptionError(f"{owner}: {exc}") from exc
        if variant is not None and getattr(spec, "bind", None) is not None:  # a family over other specs
            spec = spec.bind(variant, self)
        hints = option_hints(getattr(spec, CALLABLES[kind]))
        options = coerce_options(owner, req.options, spec.defaults, hints)
        if spec.validate is not None:  # values checked before any data or weights load
            try:
                spec.validate(options)
            except RepbenchError:
                raise
            except (ValueError, TypeError) as exc:
                raise OptionError(f"{owner}: {exc}") from exc
        name = req.name
        if variant is not None and getattr(spec, "name_of", None) is not None:  # named by content (run:)
            try:
                name = spec.name + spec.name_of(variant)
            except RepbenchError:
                raise
            except (ValueError, OSError) as exc:
                raise OptionError(f"{owner}: {exc}") from exc
        return Resolved(spec, name, options, variant)

    def plugin_of(self, kind: str, spec: Any) -> str | None:
        return self.provider.get((kind, spec.name))

    def registered_by(self, plugin: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for (kind, name), who in sorted(self.provider.items()):
            if who == plugin:
                out.setdefault(kind, []).append(name)
        return out


def load_catalog() -> Catalog:
    """The catalog of every installed plugin, each plugin that failed to load reported on stderr (one line each):
    what every command starts with."""
    catalog = Catalog.load()
    for err in catalog.errors:
        print(err.message(), file=sys.stderr)
    return catalog
