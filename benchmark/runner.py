"""Execute a plan (encoders x datasets x protocols): resumable, shardable, one record per cell.

Names and options are resolved before any work, so a typo fails at once. Each (encoder, dataset) pair is loaded
once and its features extracted once (and cached on disk); then every protocol runs on them. A cell that fails
becomes an error record and the sweep goes on; a rerun skips finished cells unless ``force``.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.atomic import remove_stale_temps
from benchmark.catalog import Catalog, Resolved
from benchmark.digest import digest
from benchmark.encoders.layers import expand_layers
from benchmark.errors import ContractError, OptionError, RecordError
from benchmark.features import FeatureCache, best_device
from benchmark.features.contracts import check_protocol_output
from benchmark.features.extract import default_workers
from benchmark.features.task import HarnessTask, load_pair
from benchmark.options import Requested
from benchmark.plugins import dist_version
from benchmark.protocols.metrics import score
from benchmark.results import ResultStore, environment, make_record
from benchmark.specs import FieldDataset, ProtocolOutput


@dataclass
class RunConfig:
    results_dir: Path = Path("results")
    cache_dir: Path | None = None
    use_cache: bool = True
    device: str | None = None
    batch_size: int = 256
    precision: str = "fp32"
    seed: int = 0
    force: bool = False
    quiet: bool = False
    workers: int | None = None  # extraction loader workers; None: default_workers(device)
    distributed: bool = False  # under torchrun: the ranks share each extraction, rank 0 runs the rest
    save_predictions: bool = False  # write each cell's predictions beside its record (benchmark.results.predictions)


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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_plan(catalog: Catalog, plan: Plan, config: RunConfig, log: Callable[[str], None] | None = None
             ) -> list[dict[str, Any]]:
    """Run every cell of ``plan`` in this process (the in-process executor); return the records in plan order
    (finished ones read back, new ones written).

    What a skip trusts: a finished record counts without loading anything when its ``config_digest`` matches,
    i.e. the same resolved options, precision, seed and versions of repbench and of the plugins that provide the
    cell's encoder, dataset and protocol. When the pair is loaded anyway (another of its cells must run), its
    finished records are also checked against the encoder's and dataset's fingerprints (weights, preprocessing,
    data), and rerun when those differ. A plugin changed in place without a version bump is caught only then:
    use ``--force`` after editing an installed plugin.
    """
    if config.distributed:  # rank 0 runs the plan below; the other ranks only encode their shares
        return _across_ranks(catalog, plan, config, log)
    log = log or (lambda msg: None if config.quiet else print(msg, file=sys.stderr))
    store = open_store(config, log)
    cache = FeatureCache(config.cache_dir, enabled=config.use_cache, log=log)
    device = best_device(config.device)
    precision = effective_precision(config.precision, device)
    if precision != config.precision:
        log(f"--precision {config.precision} autocasts on CUDA only; extracting in fp32 on {device}")
    env = environment(device, {name: info.version for name, info in catalog.plugins.infos.items()})
    records = finished_records(catalog, plan, config, store, precision, log)
    done = sum(r is not None for r in records)

    def emit(index: int, rec: dict[str, Any]) -> None:
        nonlocal done
        records[index] = write_record(store, rec)
        done += 1
        log(_summary(done, len(plan.cells), rec))

    def rerun(stale: list[int]) -> None:
        nonlocal done
        done -= len(stale)

    context = PairContext(device, precision, env, cache)
    for indices in pair_groups(plan):
        if all(records[i] is not None for i in indices):
            continue
        cells = [plan.cells[i] for i in indices]
        for position, rec in run_pair(catalog, cells, [records[i] for i in indices], config, context, log,
                                      on_stale=rerun):
            emit(indices[position], rec)
    return [r for r in records if r is not None]


def default_log(config: RunConfig) -> Callable[[str], None]:
    """Progress lines to stderr, none with ``quiet``."""
    return lambda msg: None if config.quiet else print(msg, file=sys.stderr)


def open_store(config: RunConfig, log: Callable[[str], None]) -> ResultStore:
    """The results folder, cleared of the temp files a killed run left (never a concurrent writer's: those are
    fresh)."""
    store = ResultStore(config.results_dir)
    if store.root.is_dir():
        for leftover in remove_stale_temps(store.root):
            log(f"removed {leftover.name}, left by an interrupted write")
    return store


def finished_records(catalog: Catalog, plan: Plan, config: RunConfig, store: ResultStore, precision: str,
                     log: Callable[[str], None]) -> list[dict[str, Any] | None]:
    """Per cell of ``plan``: its finished record when one with the same ``config_digest`` is in ``store`` (the
    cell is skipped), else None (it must run). Nothing counts as finished with ``force``."""
    records: list[dict[str, Any] | None] = []
    for cell in plan.cells:
        digest_ = config_digest(cell, precision, config.seed, catalog)
        records.append(None if config.force else store.finished(*cell.labels, config.seed, digest=digest_))
    skipped = sum(r is not None for r in records)
    if skipped:
        log(f"{skipped} of {len(plan.cells)} cells already finished in {store.root} (skipped; --force reruns them)")
    return records


def pair_groups(plan: Plan) -> list[list[int]]:
    """The plan's cell indices grouped by (encoder, dataset) pair, in plan order: the unit an executor runs."""
    pairs: dict[tuple[int, int], list[int]] = {}
    for index, cell in enumerate(plan.cells):
        pairs.setdefault((id(cell.encoder), id(cell.dataset)), []).append(index)
    return list(pairs.values())


@dataclass
class PairContext:
    """What every pair of a run shares where it runs: device, effective precision, environment block, cache."""

    device: str
    precision: str
    env: dict[str, Any]
    cache: FeatureCache


def run_pair(catalog: Catalog, cells: Sequence[Cell], finished: Sequence[dict[str, Any] | None],
             config: RunConfig, context: PairContext, log: Callable[[str], None],
             on_stale: Callable[[list[int]], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run one (encoder, dataset) pair: load it once, extract its features once, run its cells; yield
    ``(position in cells, record)`` per cell run, in order. Writes nothing: the caller (an executor) does.

    ``finished[i]`` is cell i's finished record or None; the None cells run. When loading fails, each of them
    gets an error record. Finished cells whose record was made with other weights or data (fingerprints) run
    again; ``on_stale`` is told their positions first.
    """
    todo = [i for i, rec in enumerate(finished) if rec is None]
    if not todo:
        return
    enc, dset = cells[0].encoder, cells[0].dataset
    start = time.perf_counter()
    try:
        dataset, encoder = load_pair(enc, dset, context.device)
        task = HarnessTask(encoder, enc.label, dataset, device=context.device, cache=context.cache,
                           precision=context.precision, seed=config.seed, batch_size=config.batch_size,
                           quiet=config.quiet, dataset_label=dset.label, workers=_workers(config, context.device))
    except Exception as exc:
        for i in todo:
            yield i, error_record(catalog, cells[i], config, context.env, exc, context.precision)
        return
    stale = [i for i, rec in enumerate(finished) if rec is not None and not _same_inputs(rec, task)]
    if stale:
        log(f"{len(stale)} finished cell(s) of {enc.label} x {dset.label} were made with other weights or data "
            f"(fingerprints differ): rerunning them")
        if on_stale is not None:
            on_stale(stale)
    load_s = time.perf_counter() - start
    for i in sorted(todo + stale):
        yield i, _run_cell(catalog, cells[i], task, config, context.env, load_s, context.precision)
        load_s = 0.0  # loading (and fitting) is shared by the pair's cells: count it once, in the first


def error_record(catalog: Catalog, cell: Cell, config: RunConfig, env: dict[str, Any], error: BaseException,
                 precision: str) -> dict[str, Any]:
    """The record of a cell that failed before its protocol could run (its pair did not load, its task died)."""
    return _record(catalog, cell, config, env, None, None, {}, error, precision)


def _same_inputs(record: dict[str, Any], task: HarnessTask) -> bool:
    """Whether a finished record was made from this encoder's weights and this dataset's samples."""
    return (record["encoder"].get("fingerprint") == task.encoder.fingerprint
            and record["dataset"].get("fingerprint") == task.dataset.fingerprint)


def _workers(config: RunConfig, device: str) -> int:
    return default_workers(device) if config.workers is None else config.workers


def effective_precision(requested: str, device: str) -> str:
    """The precision extraction really runs in: autocast exists on CUDA only, so anything else is fp32."""
    return requested if device.startswith("cuda") else "fp32"


def config_digest(cell: Cell, precision: str, seed: int, catalog: Catalog | None = None) -> str:
    """What decides a cell's numbers and can be known without loading anything: every resolved option (defaults
    included), precision, seed, and the versions of repbench and of the plugins providing the cell's specs.

    A finished record only counts for a rerun when its digest matches, so a changed default, precision or plugin
    version reruns.
    """
    payload: dict[str, Any] = {
        "encoder": [cell.encoder.name, _jsonable(_digested(cell.encoder.options))],
        "dataset": [cell.dataset.name, _jsonable(dict(cell.dataset.options))],
        "protocol": [cell.protocol.name, _jsonable(dict(cell.protocol.options))],
        "precision": precision,
        "seed": seed,
    }
    if catalog is not None:
        payload["versions"] = _versions(catalog, cell)
    return digest(payload)


def _digested(options: Any) -> dict[str, Any]:
    """An encoder's options for the digest: the role prompts (:mod:`benchmark.encoders.roles`) only when set, so
    adding them left the digests of every record made before unchanged."""
    return {k: v for k, v in dict(options).items() if not (k in ("query_prompt", "document_prompt") and v is None)}


def _versions(catalog: Catalog, cell: Cell) -> dict[str, str | None]:
    """repbench's version and those of the distributions that provide the cell's encoder, dataset, protocol."""
    out: dict[str, str | None] = {"repbench": dist_version("repbench")}
    for kind, resolved in (("encoders", cell.encoder), ("datasets", cell.dataset), ("protocols", cell.protocol)):
        out[kind] = _plugin_version(catalog, kind, resolved.spec)
    inner = sorted({_plugin_version(catalog, "datasets", spec) for spec in _inner_specs(cell.dataset.spec)})
    if inner:  # shift:A>B, corrupt:D: the plugins behind the datasets inside count too
        out["inner datasets"] = ", ".join(inner)
    return out


def _plugin_version(catalog: Catalog, kind: str, spec: Any) -> str:
    plugin = catalog.plugin_of(kind, spec)
    info = catalog.plugins.infos.get(plugin) if plugin else None
    return f"{plugin} {info.version if info else None}"


def _inner_specs(spec: Any) -> list[Any]:
    """The specs of the datasets a family's bound spec is made of (shift:, corrupt:), nested ones included."""
    out = []
    inners = getattr(spec.load, "inners", {})
    for inner in (inners.values() if isinstance(inners, dict) else inners):
        out += [inner.spec, *_inner_specs(inner.spec)]
    return out


def write_record(store: ResultStore, record: dict[str, Any]) -> dict[str, Any]:
    """Write a record; one that cannot be serialised becomes an error record instead of stopping the sweep."""
    try:
        store.write(record)
    except (TypeError, ValueError) as exc:
        record = {**record, "status": "error", "metrics": {}, "error": _error_block(exc)}
        store.write(_jsonable(record))
    return record


def _error_block(error: BaseException) -> dict[str, str]:
    return {"type": type(error).__name__, "message": str(error),
            "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:]}


def load_task(enc: Resolved, dset: Resolved, config: RunConfig) -> HarnessTask:
    """Load one (encoder, dataset) pair as an EvalTask with the feature cache, outside a sweep."""
    device = best_device(config.device)
    dataset, encoder = load_pair(enc, dset, device)
    return HarnessTask(encoder, enc.label, dataset, device=device,
                       cache=FeatureCache(config.cache_dir, enabled=config.use_cache),
                       precision=effective_precision(config.precision, device), seed=config.seed,
                       batch_size=config.batch_size, quiet=config.quiet, dataset_label=dset.label,
                       workers=_workers(config, device))


def _run_cell(catalog: Catalog, cell: Cell, task: HarnessTask, config: RunConfig, env: dict[str, Any],
              load_s: float, precision: str) -> dict[str, Any]:
    start = time.perf_counter()
    before = dict(task.timings)
    try:
        _seed_everything(config.seed)
        output = cell.protocol.spec.evaluate(task, **cell.protocol.options)
        if not isinstance(output, ProtocolOutput):
            raise ContractError(f"protocol {cell.protocol.name!r} returned {type(output).__name__}, not a "
                                "ProtocolOutput")
        if isinstance(task.dataset, FieldDataset):  # task kinds score themselves: no class predictions
            check_protocol_output(output, 0, 0, cell.protocol.name)
        else:
            n_test = len(task.checked_split("test"))
            check_protocol_output(output, n_test, task.num_classes, cell.protocol.name)
        error = None
    except Exception as exc:
        output, error = None, exc
    features_s = {k: v for k, v in task.timings.items() if k not in before}
    protocol_s = time.perf_counter() - start - sum(features_s.values())
    timings = {"load_s": load_s, "features_s": features_s, "features_cached": dict(task.cached),
               "protocol_s": protocol_s, "total_s": load_s + sum(features_s.values()) + protocol_s}
    record = _record(catalog, cell, config, env, task, output, timings, error, precision)
    if config.save_predictions and output is not None and record["status"] == "ok":
        from benchmark.results.predictions import write_predictions
        from benchmark.results.store import ResultStore

        write_predictions(ResultStore(config.results_dir).path(*cell.labels, config.seed), output, cell.encoder.label)
    return record


def _record(catalog: Catalog, cell: Cell, config: RunConfig, env: dict[str, Any], task: HarnessTask | None,
            output: ProtocolOutput | None, timings: dict[str, Any], error: BaseException | None,
            precision: str) -> dict[str, Any]:
    e, d, p = cell.encoder, cell.dataset, cell.protocol
    metrics: dict[str, Any] = {}
    if output is not None and error is None:
        try:
            metrics = _metrics(output, config.seed, p.name)
        except Exception as exc:
            error = exc
    # what the plugin reports first, then the harness's own identity fields, which a plugin's info cannot replace
    enc_block: dict[str, Any] = dict(task.encoder.info) if task is not None else {}
    dset_block: dict[str, Any] = dict(task.dataset.info) if task is not None else {}
    enc_block.update(name=e.name, label=e.label, options=dict(e.options),
                     plugin=catalog.plugin_of("encoders", e.spec), modality=e.spec.modality)
    dset_block.update(name=d.name, label=d.label, options=dict(d.options),
                      plugin=catalog.plugin_of("datasets", d.spec), modality=d.spec.modality)
    if task is not None:
        if task.embed_dim is not None:
            enc_block["embed_dim"] = task.embed_dim
        enc_block["fingerprint"] = task.encoder.fingerprint
        dset_block["fingerprint"] = task.dataset.fingerprint
        dset_block["classes"] = list(task.dataset.classes)
        if task.roles:  # task kinds: the role and prompt each field was encoded with
            enc_block["fields"] = {name: dict(how) for name, how in task.roles.items()}
    protocol = {"name": p.name, "label": p.label, "hyperparameters": dict(p.options),
                "chosen": output.chosen if output is not None else {},
                "primary_metric": p.spec.primary_metric, "higher_is_better": p.spec.higher_is_better,
                "plugin": catalog.plugin_of("protocols", p.spec)}
    parts = _jsonable({"encoder": enc_block, "dataset": dset_block, "protocol": protocol, "metrics": metrics,
                       "timings": timings, "environment": env})
    digest_ = config_digest(cell, precision, config.seed, catalog)

    def build(blocks: dict[str, Any], metrics_: dict[str, Any], err: dict[str, Any] | None) -> dict[str, Any]:
        return make_record(encoder=blocks["encoder"], dataset=blocks["dataset"], protocol=blocks["protocol"],
                           metrics=metrics_, seed=config.seed, precision=precision, timings=blocks["timings"],
                           environment=blocks["environment"], error=err, config_digest=digest_).to_json()

    try:
        return build(parts, parts["metrics"], None if error is None else _error_block(error))
    except RecordError as exc:  # a plugin's metric or info breaks the schema (top1=85, a list as weights)
        bad = _error_block(exc)
    try:
        return build(parts, {}, bad)
    except RecordError:  # the plugin's info itself is at fault: keep only the harness's identity fields
        keep = ("name", "label", "options", "plugin", "modality")
        stripped = {**parts, "encoder": {k: parts["encoder"][k] for k in keep},
                    "dataset": {k: parts["dataset"][k] for k in keep}}
        return build(stripped, {}, bad)


def _metrics(output: ProtocolOutput, seed: int, protocol: str) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    if output.predictions is not None:
        if output.labels is None:
            raise ContractError(f"protocol {protocol!r} returned predictions without labels: a ProtocolOutput with "
                                "predictions must also carry the test labels they are scored against "
                                "(ProtocolOutput(predictions, labels, ...))")
        metrics.update(score(output.predictions, output.labels, seed=seed))
    metrics.update(_jsonable(output.metrics))
    return metrics


def _jsonable(value: Any) -> Any:
    """Plain JSON types from what plugins put in info/metrics: numpy and torch values, tuples, paths; a
    non-finite float becomes null and anything unknown its string form."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _summary(i: int, n: int, rec: dict[str, Any]) -> str:
    head = f"[{i}/{n}] {rec['encoder']['label']} x {rec['dataset']['label']} x {rec['protocol']['label']}"
    if rec["status"] == "error":
        return f"{head}: ERROR {rec['error']['type']}: {rec['error']['message']}"
    metric = rec["protocol"]["primary_metric"]
    value = rec["metrics"].get(metric)
    shown = f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"
    return f"{head}: {metric} {shown} ({rec['timings']['total_s']:.1f}s)"


def _across_ranks(catalog: Catalog, plan: Plan, config: RunConfig, log: Callable[[str], None] | None
                  ) -> list[dict[str, Any]]:
    """``run_plan`` under torchrun (:mod:`benchmark.features.distributed`): rank 0 runs the plan as one process
    would (it alone reads and writes records and the feature cache and runs protocols) while every rank encodes
    a share of each split rank 0 extracts; the other ranks return no records."""
    from benchmark.features import distributed as ranks
    from benchmark.methods.distributed import is_main

    single = replace(config, distributed=False)
    if is_main():
        with ranks.lead():
            return run_plan(catalog, plan, single, log)
    device = best_device(config.device)
    pairs = {(c.encoder.label, c.dataset.label): (c.encoder, c.dataset) for c in plan.cells}
    ranks.follow(lambda e, d: load_pair(*pairs[(e, d)], device), device=device, workers=_workers(config, device))
    return []
