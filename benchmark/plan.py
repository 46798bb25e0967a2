"""A plan: the cells (encoder x dataset x protocol) of one shard, resolved and in run order, and what decides a
cell's numbers before anything is loaded (its config digest: resolved options, precision, seed, plugin versions).

``layers=all`` expands here (:func:`benchmark.encoders.layers.expand_layers`), so every depth is its own cell.
Executors (:mod:`benchmark.runner`, :mod:`benchmark.runner_ray`) run plans; records name their cells.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark.catalog import Catalog, Resolved
from benchmark.encoders.layers import expand_layers
from benchmark.errors import OptionError
from benchmark.options import Requested
from benchmark.plugins import dist_version
from benchmark.specs import DatasetSpec
from benchmark.storage.digest import digest
from benchmark.storage.jsonable import jsonable
from benchmark.storage.local_weights import local_weights_id


@dataclass
class Cell:
    encoder: Resolved
    dataset: Resolved
    protocol: Resolved

    @property
    def labels(self) -> tuple[str, str, str]:
        return self.encoder.label, self.dataset.label, self.protocol.label


@dataclass
class Plan:
    """The cells of one shard, in run order (grouped by (encoder, dataset) pair)."""

    cells: list[Cell]
    skipped_modality: list[tuple[str, str, str]] = field(default_factory=list)
    #: cells whose protocol does not accept the dataset's task kind (``DatasetSpec.kind``, ``ProtocolSpec.kinds``)
    skipped_kind: list[tuple[str, str, str]] = field(default_factory=list)
    shard: tuple[int, int] = (0, 1)
    pairs: int = 0  # (encoder, dataset) pairs this shard was given, before modality filtering

    def skip_notes(self) -> list[str]:
        """What ``repbench eval`` says about the cells it leaves out: each modality mismatch, and one line for the
        cells whose protocol does not evaluate the dataset's task kind."""
        notes = [f"skipping {e} x {d} x {p}: the encoder's and dataset's modalities differ"
                 for e, d, p in self.skipped_modality]
        if self.skipped_kind:
            notes.append(f"skipping {len(self.skipped_kind)} cell(s) whose protocol does not evaluate the dataset's "
                         f"task kind (e.g. {' x '.join(self.skipped_kind[0])})")
        return notes


def make_plan(catalog: Catalog, encoders: Sequence[Requested | str], datasets: Sequence[Requested | str],
              protocols: Sequence[Requested | str], shard: tuple[int, int] = (0, 1)) -> Plan:
    """Resolve every name (raising on unknown names or options) and list the cells of this shard.

    Cells whose encoder and dataset modalities differ (an image encoder on a text dataset) are left out and
    listed in ``skipped_modality``. Sharding splits (encoder, dataset) pairs, so a pair's features are
    extracted on one machine only.
    """
    encoders = expand_layers(catalog, encoders)  # layers=all: one encoder per depth (benchmark.encoders.layers)
    encs = [catalog.resolve("encoders", e) for e in encoders]
    dsets = [catalog.resolve("datasets", d) for d in datasets]
    prots = [catalog.resolve("protocols", p) for p in protocols]
    for kind, items in (("encoder", encs), ("dataset", dsets), ("protocol", prots)):
        labels = [r.label for r in items]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise OptionError(f"{kind} {dupes[0]!r} is listed twice; drop the repeat")
    index, count = shard
    if not (0 <= index < count):
        raise OptionError(f"shard {index}/{count} is invalid: use i/n with 0 <= i < n")
    check_kinds(dsets, prots)
    plan = Plan([], shard=shard)
    for pair_no, (e, d) in enumerate(itertools.product(encs, dsets)):
        if pair_no % count != index:
            continue
        plan.pairs += 1
        for p in prots:
            if e.spec.modality != d.spec.modality or d.spec.modality not in p.spec.modalities:
                plan.skipped_modality.append((e.label, d.label, p.label))
                continue
            if d.spec.kind not in p.spec.kinds:  # another dataset of the list is of a kind it accepts
                plan.skipped_kind.append((e.label, d.label, p.label))
                continue
            plan.cells.append(Cell(e, d, p))
    return plan


def check_kinds(datasets: Sequence[Resolved], protocols: Sequence[Resolved]) -> None:
    """OptionError (one line) when a protocol accepts none of the listed datasets' task kinds, or a dataset is
    of a kind no listed protocol accepts: asking ``sts`` of a classification dataset is a mistake, not a skip.
    Mixed lists (classification and retrieval datasets, knn and qrels protocols) run the cells that match."""
    kinds = {d.spec.kind for d in datasets}
    for p in protocols:
        if kinds and not kinds & set(p.spec.kinds):
            given = "; ".join(f"{d.label!r} is a {d.spec.kind} dataset" for d in datasets[:3])
            raise OptionError(f"protocol {p.label!r} evaluates {' or '.join(p.spec.kinds)} datasets, but {given}; "
                              f"pick a protocol that accepts {datasets[0].spec.kind} (repbench list protocols) or a "
                              f"{p.spec.kinds[0]} dataset")
    accepted = {k for p in protocols for k in p.spec.kinds}
    for d in datasets:
        if protocols and d.spec.kind not in accepted:
            raise OptionError(f"dataset {d.label!r} is a {d.spec.kind} dataset, which none of the protocols "
                              f"{', '.join(p.label for p in protocols)} evaluates; add a protocol that accepts "
                              f"{d.spec.kind} (repbench list protocols)")


def config_digest(cell: Cell, precision: str, seed: int, catalog: Catalog | None = None) -> str:
    """What decides a cell's numbers and can be known without loading anything: every resolved option (defaults
    included), precision, seed, the versions of repbench and of the plugins providing the cell's specs, and the
    content hash of local weight files behind the encoder (:mod:`benchmark.storage.local_weights`).

    A finished record only counts for a rerun when its digest matches, so a changed default, precision or plugin
    version reruns.
    """
    payload: dict[str, Any] = {
        "encoder": [cell.encoder.name, jsonable(digested(cell.encoder.options))],
        "dataset": [cell.dataset.name, jsonable(dict(cell.dataset.options))],
        "protocol": [cell.protocol.name, jsonable(dict(cell.protocol.options))],
        "precision": precision,
        "seed": seed,
    }
    if catalog is not None:
        payload["versions"] = versions(catalog, cell)
    weights = local_weights_id(cell.encoder)
    if weights is not None:  # run:<folder>, checkpoint=<file>: new weights behind the same name rerun
        payload["local_weights"] = weights
    return digest(payload)


def digested(options: Any) -> dict[str, Any]:
    """An encoder's options for the digest: the role prompts (:mod:`benchmark.encoders.roles`) only when set, so
    adding them left the digests of every record made before unchanged."""
    return {k: v for k, v in dict(options).items() if not (k in ("query_prompt", "document_prompt") and v is None)}


def versions(catalog: Catalog, cell: Cell) -> dict[str, str | None]:
    """repbench's version and those of the distributions that provide the cell's encoder, dataset, protocol."""
    out: dict[str, str | None] = {"repbench": dist_version("repbench")}
    for kind, resolved in (("encoders", cell.encoder), ("datasets", cell.dataset), ("protocols", cell.protocol)):
        out[kind] = plugin_version(catalog, kind, resolved.spec)
    inner = sorted({plugin_version(catalog, "datasets", spec) for spec in inner_specs(cell.dataset.spec)})
    if inner:  # shift:A>B, corrupt:D: the plugins behind the datasets inside count too
        out["inner datasets"] = ", ".join(inner)
    return out


def plugin_version(catalog: Catalog, kind: str, spec: Any) -> str:
    """``<plugin> <version>`` of the distribution that registered ``spec``."""
    plugin = catalog.plugin_of(kind, spec)
    info = catalog.plugins.infos.get(plugin) if plugin else None
    return f"{plugin} {info.version if info else None}"


def inner_specs(spec: DatasetSpec) -> list[DatasetSpec]:
    """The specs of the datasets a family's bound spec is made of (shift:, corrupt:), nested ones included."""
    out: list[DatasetSpec] = []
    for inner in spec.inner:
        out += [inner, *inner_specs(inner)]
    return out
