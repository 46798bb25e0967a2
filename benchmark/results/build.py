"""A cell's record, built once when the cell finishes: the one place a :class:`~benchmark.results.record.Record` is
made from a cell of a plan, what its task reported and what its protocol returned (or the error it raised).

Executors (:mod:`benchmark.runner`, :mod:`benchmark.runner_ray`) call :func:`build_record` and pass the typed
record on: to the store, to the progress line (:func:`summary_line`) and to the tables. The JSON written is
``record.to_json()``, unchanged from what the runner wrote before.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from typing import Any

from benchmark.catalog import Catalog
from benchmark.errors import ContractError, RecordError
from benchmark.features.task import HarnessTask
from benchmark.plan import Cell, config_digest
from benchmark.protocols.metrics import score
from benchmark.results.record import Record, make_record
from benchmark.specs import ProtocolOutput
from benchmark.storage.jsonable import jsonable

#: The fields of an encoder or dataset block the harness itself sets (a plugin's info cannot replace them).
IDENTITY = ("name", "label", "options", "plugin", "modality")


def build_record(catalog: Catalog, cell: Cell, *, seed: int, precision: str, env: dict[str, Any],
                 task: HarnessTask | None = None, output: ProtocolOutput | None = None,
                 timings: dict[str, Any] | None = None, error: BaseException | None = None,
                 suites: Sequence[dict[str, Any]] = ()) -> Record:
    """The record of one finished cell: ``status: ok`` with its metrics, or ``error`` with the exception.

    ``task`` is None when the pair never loaded. ``suites`` are the tags of the suites the cell runs for. A
    plugin whose metrics or info break the schema (top1=85, a list as weights) gets an error record naming the
    field; when even its info is unusable, only the harness's identity fields are kept.
    """
    e, d, p = cell.encoder, cell.dataset, cell.protocol
    # what the plugin reports first, then the harness's own identity fields, which a plugin's info cannot replace
    enc_block: dict[str, Any] = {}
    dset_block: dict[str, Any] = {}
    if task is not None:
        try:  # a lazy dataset whose build raises does so here again: the cell's error, not the sweep's end
            enc_block, dset_block = dict(task.encoder.info), dict(task.dataset.info)
            identity = {"encoder": task.encoder.fingerprint, "dataset": task.dataset.fingerprint,
                        "classes": list(task.dataset.classes)}
        except Exception as exc:
            enc_block, dset_block, task, output = {}, {}, None, None
            error = error or exc
    metrics: dict[str, Any] = {}
    if output is not None and error is None:
        try:
            metrics = cell_metrics(output, seed, p.name)
        except Exception as exc:
            error = exc
    enc_block.update(name=e.name, label=e.label, options=e.shown_options,
                     plugin=catalog.plugin_of("encoders", e.spec), modality=e.spec.modality)
    dset_block.update(name=d.name, label=d.label, options=dict(d.options),
                      plugin=catalog.plugin_of("datasets", d.spec), modality=d.spec.modality)
    if task is not None:
        if task.embed_dim is not None:
            enc_block["embed_dim"] = task.embed_dim
        enc_block["fingerprint"] = identity["encoder"]
        dset_block["fingerprint"] = identity["dataset"]
        dset_block["classes"] = identity["classes"]
        if task.roles:  # task kinds: the role and prompt each field was encoded with
            enc_block["fields"] = {name: dict(how) for name, how in task.roles.items()}
    protocol = {"name": p.name, "label": p.label, "hyperparameters": dict(p.options),
                "chosen": output.chosen if output is not None else {},
                "primary_metric": p.spec.primary_metric, "higher_is_better": p.spec.higher_is_better,
                "plugin": catalog.plugin_of("protocols", p.spec)}
    parts = jsonable({"encoder": enc_block, "dataset": dset_block, "protocol": protocol, "metrics": metrics,
                      "timings": timings or {}, "environment": env})
    digest_ = config_digest(cell, precision, seed, catalog)

    def build(blocks: dict[str, Any], metrics_: dict[str, Any], err: dict[str, Any] | None) -> Record:
        return make_record(encoder=blocks["encoder"], dataset=blocks["dataset"], protocol=blocks["protocol"],
                           metrics=metrics_, seed=seed, precision=precision, timings=blocks["timings"],
                           environment=blocks["environment"], error=err, config_digest=digest_,
                           suites=list(suites) or None)

    try:
        return build(parts, parts["metrics"], None if error is None else error_block(error))
    except RecordError as exc:  # a plugin's metric or info breaks the schema (top1=85, a list as weights)
        bad = error_block(exc)
    try:
        return build(parts, {}, bad)
    except RecordError:  # the plugin's info itself is at fault: keep only the harness's identity fields
        stripped = {**parts, "encoder": {k: parts["encoder"][k] for k in IDENTITY},
                    "dataset": {k: parts["dataset"][k] for k in IDENTITY}}
        return build(stripped, {}, bad)


def cell_metrics(output: ProtocolOutput, seed: int, protocol: str) -> dict[str, Any]:
    """The record's ``metrics``: the harness's scores of the protocol's predictions (when it returned any),
    then the protocol's own metrics."""
    metrics: dict[str, Any] = {}
    if output.predictions is not None:
        if output.labels is None:
            raise ContractError(f"protocol {protocol!r} returned predictions without labels: a ProtocolOutput with "
                                "predictions must also carry the test labels they are scored against "
                                "(ProtocolOutput(predictions, labels, ...))")
        metrics.update(score(output.predictions, output.labels, seed=seed))
    metrics.update(jsonable(output.metrics))
    return metrics


def error_block(error: BaseException) -> dict[str, str]:
    """A record's ``error``: the exception's type, message and the last 4,000 characters of its traceback."""
    return {"type": type(error).__name__, "message": str(error),
            "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__))[-4000:]}


def as_error(record: Record, error: BaseException) -> Record:
    """``record`` turned into an error record (no metrics) for ``error``: what a record that cannot be written
    becomes, so one bad cell never stops a sweep."""
    data = {**record.to_json(), "status": "error", "metrics": {}, "error": error_block(error)}
    return Record.from_json(jsonable(data), f"record {record.id}")


def with_suites(record: Record, suites: Sequence[dict[str, Any]]) -> Record | None:
    """``record`` with each of ``suites`` added to its ``suites`` list (a cell can belong to several), or None
    when it already has them all: a cell finished earlier, outside a suite, joins the suite it is run for."""
    tags = list(record.suites or [])
    missing = [s for s in suites if s not in tags]
    if not missing:
        return None
    return Record.from_json({**record.to_json(), "suites": [*tags, *missing]}, f"record {record.id}")


def summary_line(i: int, n: int, record: Record) -> str:
    """The progress line of the i-th of n finished cells: its labels and primary metric, or its error."""
    head = f"[{i}/{n}] {record.encoder.label} x {record.dataset.label} x {record.protocol.label}"
    if record.error is not None and record.status == "error":
        return f"{head}: ERROR {record.error.type}: {record.error.message}"
    value = record.value
    shown = f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"
    return f"{head}: {record.metric} {shown} ({record.timings['total_s']:.1f}s)"
