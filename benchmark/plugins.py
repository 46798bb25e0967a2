"""Build the plugin manager: entry-point plugins first, then the built-ins through the same ``pm.register``.

``REPBENCH_LOAD_PLUGINS`` is an allowlist of entry-point plugin names (comma-separated; empty means none);
unset, every installed plugin loads. ``REPBENCH_DISABLE_PLUGINS`` is a denylist that applies to built-ins too.
A plugin that fails to import is recorded as a :class:`PluginFailure` (plugin, distribution, version, the original
exception kept as the cause) and every other plugin still loads.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import pluggy

from benchmark import hookspecs

ENTRY_POINT_GROUP = "repbench"
ALLOW_ENV = "REPBENCH_LOAD_PLUGINS"
DENY_ENV = "REPBENCH_DISABLE_PLUGINS"

#: The built-in plugins, name -> module (or ``module:object``), in registration order. Each is a plain module
#: of @hookimpl functions in its concept's folder, or a class of them in the folder's light ``builtin`` module,
#: whose specs name the torch-importing code with :class:`~benchmark.specs.lazy.Lazy` (so ``repbench list``
#: imports no torch). Either reads as a template for a third-party plugin.
BUILTIN_PLUGINS: dict[str, str] = {
    "builtin:pixels": "benchmark.encoders.builtin:Pixels",
    "builtin:timm": "benchmark.encoders.builtin:Timm",
    "builtin:text-encoders": "benchmark.encoders.builtin:TextEncoders",
    "builtin:vision-datasets": "benchmark.datasets.vision",
    "builtin:torchvision": "benchmark.datasets.torchvision",
    "builtin:text-datasets": "benchmark.datasets.text",
    "builtin:embedding-tasks": "benchmark.datasets.embedding_tasks",
    "builtin:knn": "benchmark.protocols.builtin:Knn",
    "builtin:linear": "benchmark.protocols.builtin:Linear",
    "builtin:fewshot": "benchmark.protocols.builtin:Fewshot",
    "builtin:finetune": "benchmark.protocols.builtin:Finetune",
    "builtin:simclr": "benchmark.methods.builtin:SimCLR",
    "builtin:byol": "benchmark.methods.builtin:BYOL",
    "builtin:vicreg": "benchmark.methods.builtin:VICReg",
    "builtin:autoencoder": "benchmark.methods.builtin:Autoencoder",
    "builtin:supervised": "benchmark.methods.builtin:Supervised",
    "builtin:barlowtwins": "benchmark.methods.builtin:BarlowTwins",
    "builtin:mocov3": "benchmark.methods.builtin:MoCoV3",
    "builtin:dino": "benchmark.methods.builtin:DINO",
    "builtin:mae": "benchmark.methods.builtin:MAE",
    "builtin:runs": "benchmark.methods.builtin:Runs",
    "builtin:retrieval": "benchmark.protocols.builtin:Retrieval",
    "builtin:cluster": "benchmark.protocols.builtin:Cluster",
    "builtin:labeleff": "benchmark.protocols.builtin:Labeleff",
    "builtin:sts": "benchmark.protocols.sts",
    "builtin:pairclass": "benchmark.protocols.pairclass",
    "builtin:qrels-retrieval": "benchmark.protocols.builtin:QrelsRetrieval",
    "builtin:rerank": "benchmark.protocols.rerank",
    "builtin:suites": "benchmark.leaderboards.builtin_suites",
    "builtin:shift-datasets": "benchmark.datasets.shift",
    "builtin:corrupt-datasets": "benchmark.datasets.corrupt",
}


@dataclass(frozen=True)
class PluginInfo:
    name: str
    module: str
    distribution: str | None
    version: str | None
    builtin: bool


@dataclass
class PluginFailure:
    """The report of a plugin that could not be loaded or whose hook failed; ``error`` is the original exception.

    Not an exception itself: loading goes on, and the CLI prints :meth:`message` for each report.
    """

    plugin: str
    distribution: str | None
    version: str | None
    error: BaseException
    stage: str = "import"

    def message(self) -> str:
        where = f" (distribution {self.distribution} {self.version})" if self.distribution else ""
        return (
            f'Error in repbench plugin "{self.plugin}"{where} during {self.stage}: '
            f"{type(self.error).__name__}: {self.error}\n"
            f"  The other plugins loaded. To skip this one, set {DENY_ENV}={self.plugin} "
            f"(or list only the plugins you want in {ALLOW_ENV})."
        )


@dataclass
class PluginSet:
    """The plugin manager plus what repbench knows about each plugin it tried to load."""

    pm: pluggy.PluginManager
    infos: dict[str, PluginInfo] = field(default_factory=dict)
    errors: list[PluginFailure] = field(default_factory=list)


def _env_list(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {item.strip() for item in raw.split(",") if item.strip()}


def _new_pm() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _import_object(target: str) -> object:
    """The module ``a.b``, or the object ``c`` in module ``a.b`` for ``a.b:c``."""
    modname, _, attr = target.partition(":")
    module = importlib.import_module(modname)
    return getattr(module, attr) if attr else module


def make_plugin_manager(
    entry_points: Iterable[md.EntryPoint] | None = None,
    builtins: Mapping[str, str] | None = None,
    extra_plugins: Sequence[tuple[str, object]] = (),
) -> PluginSet:
    """Load entry-point plugins, then built-ins, then ``extra_plugins`` (name, module) as given; validate.

    ``entry_points`` defaults to the installed ``repbench`` group; ``builtins`` (name -> module) to
    :data:`BUILTIN_PLUGINS`.
    Tests pass fakes for both.
    """
    pset = PluginSet(_new_pm())
    allow = _env_list(ALLOW_ENV)
    deny = _env_list(DENY_ENV) or set()
    eps = md.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
    for ep in sorted(eps, key=lambda e: e.name):
        if (allow is not None and ep.name not in allow) or ep.name in deny:
            continue
        _load_entry_point(pset, ep)
    for short, modname in (BUILTIN_PLUGINS if builtins is None else builtins).items():
        if short in deny or modname in deny:
            continue
        try:
            module = _import_object(modname)
        except Exception as exc:  # a broken built-in must not take the others down either
            pset.errors.append(PluginFailure(short, "repbench", dist_version("repbench"), exc))
            continue
        _register(pset, short, module, PluginInfo(short, modname, "repbench", dist_version("repbench"), True))
    for name, extra in extra_plugins:
        modname = getattr(extra, "__name__", repr(extra))
        _register(pset, name, extra, PluginInfo(name, modname, None, None, False))
    _check_pending(pset)
    return pset


def _check_pending(pset: PluginSet) -> None:
    """pluggy's check_pending(), per plugin: a misspelt hook name fails loudly for its plugin only."""
    try:
        pset.pm.check_pending()
        return
    except pluggy.PluginValidationError:
        pass
    for name, plugin in list(pset.pm.list_name_plugin()):
        unknown = [
            hc.name
            for hc in pset.pm.get_hookcallers(plugin) or []
            if not hc.has_spec() and any(not impl.optionalhook for impl in hc.get_hookimpls() if impl.plugin is plugin)
        ]
        if unknown:
            info = pset.infos.pop(name)
            pset.pm.unregister(plugin)
            known = ", ".join(sorted(n for n in dir(hookspecs) if n.startswith("register_")))
            exc = pluggy.PluginValidationError(
                plugin, f"unknown hook {', '.join(sorted(unknown))}: repbench's hooks are {known}"
            )
            pset.errors.append(PluginFailure(name, info.distribution, info.version, exc, stage="validation"))
    pset.pm.check_pending()


def dist_version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _load_entry_point(pset: PluginSet, ep: md.EntryPoint) -> None:
    dist = getattr(ep, "dist", None)
    dist_name = dist.metadata["Name"] if dist is not None else None
    ep_version = dist.version if dist is not None else None
    if ep.name in pset.infos:
        pset.errors.append(
            PluginFailure(ep.name, dist_name, ep_version, ValueError(f"a plugin named {ep.name!r} is already loaded"))
        )
        return
    try:
        module = ep.load()
    except Exception as exc:
        pset.errors.append(PluginFailure(ep.name, dist_name, ep_version, exc))
        return
    info = PluginInfo(ep.name, getattr(module, "__name__", ep.value), dist_name, ep_version, False)
    _register(pset, ep.name, module, info)


def _register(pset: PluginSet, name: str, module: object, info: PluginInfo) -> None:
    try:
        pset.pm.register(module, name=name)
    except Exception as exc:  # pluggy rejects unknown hook names with wrong signatures, duplicates, ...
        pset.errors.append(PluginFailure(name, info.distribution, info.version, exc, stage="registration"))
        return
    pset.infos[name] = info

