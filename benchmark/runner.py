"""Execute a plan (encoders x datasets x protocols): resumable, shardable, one record per cell.

Names and options are resolved before any work, so a typo fails at once. Each (encoder, dataset) pair is loaded
once and its features extracted once (and cached on disk); then every protocol runs on them. A cell that fails
becomes an error record and the sweep goes on; a rerun skips finished cells unless ``force``.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.catalog import Catalog, Resolved
from benchmark.errors import ContractError, OptionError
from benchmark.features import FeatureCache
from benchmark.features.contracts import check_protocol_output
from benchmark.features.extract import default_workers
from benchmark.features.task import HarnessTask, load_pair
from benchmark.plan import Cell, Plan, config_digest
from benchmark.results import ResultStore, environment
from benchmark.results.build import as_error, build_record, summary_line, with_suites
from benchmark.results.record import Record
from benchmark.runtime.cell_guard import cell_parts, cell_timeout, check_timeout, exit_error
from benchmark.runtime.devices import best_device, effective_precision
from benchmark.specs import FieldDataset, ProtocolOutput
from benchmark.storage.atomic import remove_stale_temps


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
    cell_timeout: float | None = None  # seconds a cell may run before it is stopped as an error record; None: no limit
    distributed: bool = False  # under torchrun: the ranks share each extraction, rank 0 runs the rest
    save_predictions: bool = False  # write each cell's predictions beside its record (benchmark.results.predictions)
    suites: tuple[dict[str, Any], ...] = ()  # tags of the suites the cells run for, set on their records

    def __post_init__(self) -> None:  # before any work: not one error record per cell
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise OptionError(f"--batch-size {self.batch_size}: give a positive number of samples per batch")
        check_timeout(self.cell_timeout)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def run_plan(catalog: Catalog, plan: Plan, config: RunConfig, log: Callable[[str], None] | None = None
             ) -> list[Record]:
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
    log = log or default_log(config)
    store = open_store(config, log)
    cache = FeatureCache(config.cache_dir, enabled=config.use_cache, log=log)
    device = best_device(config.device)
    precision = effective_precision(config.precision, device)
    if precision != config.precision:
        log(f"--precision {config.precision} autocasts on CUDA only; extracting in fp32 on {device}")
    env = environment(device, {name: info.version for name, info in catalog.plugins.infos.items()})
    records = finished_records(catalog, plan, config, store, precision, log)
    done = sum(r is not None for r in records)

    def emit(index: int, rec: Record) -> None:
        nonlocal done
        records[index] = write_record(store, rec)
        done += 1
        log(summary_line(done, len(plan.cells), rec))

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
                     log: Callable[[str], None]) -> list[Record | None]:
    """Per cell of ``plan``: its finished record when one with the same ``config_digest`` is in ``store`` (the
    cell is skipped), else None (it must run). Nothing counts as finished with ``force``. A finished record
    that lacks a tag of ``config.suites`` is rewritten with it (a cell can belong to several suites)."""
    records: list[Record | None] = []
    for cell in plan.cells:
        digest_ = config_digest(cell, precision, config.seed, catalog)
        record = None if config.force else store.finished(*cell.labels, config.seed, digest=digest_)
        tagged = with_suites(record, config.suites) if record is not None else None
        if tagged is not None:
            store.write(tagged)
            record = tagged
        records.append(record)
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


def run_pair(catalog: Catalog, cells: Sequence[Cell], finished: Sequence[Record | None],
             config: RunConfig, context: PairContext, log: Callable[[str], None],
             on_stale: Callable[[list[int]], None] | None = None) -> Iterator[tuple[int, Record]]:
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
        with cell_timeout(config.cell_timeout, f"loading {enc.label} x {dset.label}"):
            dataset, encoder = load_pair(enc, dset, context.device)
        task = HarnessTask(encoder, enc.label, dataset, device=context.device, cache=context.cache,
                           precision=context.precision, seed=config.seed, batch_size=config.batch_size,
                           quiet=config.quiet, dataset_label=dset.label, workers=_workers(config, context.device))
    except (Exception, SystemExit) as exc:
        error = exit_error(exc, cell_parts(catalog, cells[0])) if isinstance(exc, SystemExit) else exc
        for i in todo:
            yield i, error_record(catalog, cells[i], config, context.env, error, context.precision)
        return
    try:
        stale = [i for i, rec in enumerate(finished) if rec is not None and not _same_inputs(rec, task)]
    except Exception as exc:  # a lazy dataset that fails to build when fingerprinted
        for i in todo:
            yield i, error_record(catalog, cells[i], config, context.env, exc, context.precision)
        return
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
                 precision: str) -> Record:
    """The record of a cell that failed before its protocol could run (its pair did not load, its task died)."""
    return build_record(catalog, cell, seed=config.seed, precision=precision, env=env, error=error,
                        suites=config.suites)


def _same_inputs(record: Record, task: HarnessTask) -> bool:
    """Whether a finished record was made from this encoder's weights and this dataset's samples."""
    return (record.encoder.extra.get("fingerprint") == task.encoder.fingerprint
            and record.dataset.extra.get("fingerprint") == task.dataset.fingerprint)


def _workers(config: RunConfig, device: str) -> int:
    return default_workers(device) if config.workers is None else config.workers


def write_record(store: ResultStore, record: Record) -> Record:
    """Write a record; one that cannot be serialised becomes an error record instead of stopping the sweep."""
    try:
        store.write(record)
    except (TypeError, ValueError) as exc:
        record = as_error(record, exc)
        store.write(record)
    return record


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
              load_s: float, precision: str) -> Record:
    start = time.perf_counter()
    before = dict(task.timings)
    try:
        with cell_timeout(config.cell_timeout, f"cell {' x '.join(cell.labels)}"):
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
        error: BaseException | None = None
    except Exception as exc:
        output, error = None, exc
    except SystemExit as exc:  # plugin code exiting the process: a failed cell naming the plugin
        output, error = None, exit_error(exc, cell_parts(catalog, cell))
    features_s = {k: v for k, v in task.timings.items() if k not in before}
    protocol_s = time.perf_counter() - start - sum(features_s.values())
    timings = {"load_s": load_s, "features_s": features_s, "features_cached": dict(task.cached),
               "protocol_s": protocol_s, "total_s": load_s + sum(features_s.values()) + protocol_s}
    if config.cell_timeout is not None:
        timings["cell_timeout_s"] = config.cell_timeout
    record = build_record(catalog, cell, seed=config.seed, precision=precision, env=env, task=task, output=output,
                          timings=timings, error=error, suites=config.suites)
    if config.save_predictions and output is not None and record.status == "ok":
        from benchmark.results.predictions import write_predictions

        write_predictions(ResultStore(config.results_dir).path(*cell.labels, config.seed), output, cell.encoder.label)
    return record


def _across_ranks(catalog: Catalog, plan: Plan, config: RunConfig, log: Callable[[str], None] | None
                  ) -> list[Record]:
    """``run_plan`` under torchrun (:mod:`benchmark.features.distributed`): rank 0 runs the plan as one process
    would (it alone reads and writes records and the feature cache and runs protocols) while every rank encodes
    a share of each split rank 0 extracts; the other ranks return no records."""
    from benchmark.features import distributed as ranks
    from benchmark.runtime.distributed import is_main

    single = replace(config, distributed=False)
    if is_main():
        with ranks.lead():
            return run_plan(catalog, plan, single, log)
    device = best_device(config.device)
    pairs = {(c.encoder.label, c.dataset.label): (c.encoder, c.dataset) for c in plan.cells}
    ranks.follow(lambda e, d: load_pair(*pairs[(e, d)], device), device=device, workers=_workers(config, device))
    return []
