"""Resolving a suite against the catalog: its cells as canonical labels, and the tag its records carry.

A suite names datasets and protocols as spec strings; records name them by their canonical labels (name plus
non-default options). :func:`resolve_suite` resolves every string through the catalog (unknown names and bad
options fail here, naming the suite) so a leaderboard can select exactly the suite's cells from records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmark.catalog import Catalog
from benchmark.errors import OptionError, RepbenchError
from benchmark.specs import SuiteSpec


@dataclass(frozen=True)
class ResolvedSuite:
    """A suite with its datasets and protocols resolved: ``cells`` are (modality, dataset label, protocol label)
    in suite order, leaving out pairs whose protocol does not serve the dataset's modality."""

    spec: SuiteSpec
    plugin: str | None
    datasets: tuple[str, ...]
    protocols: tuple[str, ...]
    cells: tuple[tuple[str, str, str], ...]

    @property
    def name(self) -> str:
        return self.spec.name

    def tag(self) -> dict[str, Any]:
        """What a record stores in its ``suites`` list."""
        return {"name": self.spec.name, "version": self.spec.version}


def resolve_suite(catalog: Catalog, name: str) -> ResolvedSuite:
    """The suite ``name`` with every dataset and protocol resolved; raises :class:`UnknownNameError` for an
    unknown suite and a :class:`RepbenchError` naming the suite when one of its cells cannot be resolved."""
    resolved = catalog.resolve("suites", name)
    spec: SuiteSpec = resolved.spec
    try:
        dsets = [catalog.resolve("datasets", d) for d in spec.datasets]
        prots = [catalog.resolve("protocols", p) for p in spec.protocols]
    except RepbenchError as exc:
        raise OptionError(f"suite {spec.name!r} (plugin {catalog.plugin_of('suites', spec)}) names a cell this "
                          f"installation cannot resolve: {exc}") from exc
    cells = tuple((d.spec.modality, d.label, p.label) for d in dsets for p in prots
                  if d.spec.modality in p.spec.modalities and d.spec.kind in p.spec.kinds)
    return ResolvedSuite(spec, catalog.plugin_of("suites", spec), tuple(d.label for d in dsets),
                         tuple(p.label for p in prots), cells)
