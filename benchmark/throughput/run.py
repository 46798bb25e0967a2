"""``repbench throughput`` as a library call: every encoder measured in a fresh worker process, records written.

:func:`run_throughput` resolves every encoder name first (unknown names and bad options fail before anything
runs), then measures each encoder in its own ``python -m benchmark.throughput.worker`` process (``isolate``,
the default), so one model's memory, caches, compiled graphs and allocator state never skew another's. The
worker loads the encoder, measures it (:func:`~benchmark.throughput.measure.measure_encoder`) and hands its
records back as JSON; the parent validates and writes them into ``results_dir``
(:func:`~benchmark.results.throughput.write_throughput`). ``isolate=False`` measures in this process (tests,
benchmarks, encoders from plugins only this process has).

An encoder that cannot be measured at all (no ``example_batch``, weights unavailable, the worker crashed) is a
:class:`Failure`; the other encoders still run. Cells that ran out of memory or failed are records with status
``"oom"`` / ``"error"``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
import traceback
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.catalog import Catalog, Resolved
from benchmark.errors import RecordError
from benchmark.options import Requested, parse
from benchmark.results.record import now_iso
from benchmark.results.throughput import ThroughputRecord, throughput_id, write_throughput
from benchmark.throughput.measure import (
    Measurement,
    ThroughputSettings,
    measure_encoder,
    params_of,
    require_example_batch,
)
from benchmark.throughput.timing import Clock

Log = Callable[[str], None]


@dataclass(frozen=True)
class Failure:
    """An encoder that could not be measured: the label, the exception's type name and message."""

    label: str
    type: str
    message: str
    traceback: str = ""


@dataclass
class RunResult:
    """The records written (and their files) and the encoders that failed as a whole."""

    records: list[ThroughputRecord] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def jsonable(value: Any) -> Any:
    """Plain JSON values: tuples become lists, non-finite floats null, tensors and unknown objects strings."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    item = getattr(value, "item", None)  # numpy / torch scalars
    return jsonable(item()) if callable(item) and getattr(value, "ndim", 1) == 0 else str(value)


def encoder_block(catalog: Catalog, resolved: Resolved, encoder: Any, info: Mapping[str, Any]) -> dict[str, Any]:
    """The record's ``encoder`` block: the plugin's ``info`` plus name, label, options, plugin and modality."""
    block = dict(info)
    block.update(name=resolved.name, label=resolved.label, options=resolved.shown_options,
                 plugin=catalog.plugin_of("encoders", resolved.spec), modality=resolved.spec.modality,
                 params=params_of(encoder, info))
    return jsonable(block)


def cell_record(cell: Measurement, *, block: Mapping[str, Any], settings: ThroughputSettings, device_name: str,
                environment: Mapping[str, Any], notes: Sequence[str] = ()) -> ThroughputRecord:
    """A validated record for one cell (the run's ``notes`` first, then the cell's)."""
    label = str(block["label"])
    rid = throughput_id(label, settings.device, device_name, cell.precision, cell.batch_size, cell.seq_len,
                        settings.channels_last, settings.compile)
    data = {"kind": "throughput", "schema_version": 1, "id": rid, "status": cell.status, "encoder": dict(block),
            "device": settings.device, "device_name": device_name, "precision": cell.precision,
            "precision_ran": cell.precision_ran, "batch_size": cell.batch_size, "seq_len": cell.seq_len,
            "channels_last": settings.channels_last, "compile": settings.compile,
            "timing": cell.timing.to_json() if cell.timing is not None else None,
            "metrics": dict(cell.metrics, params=block.get("params")), "environment": dict(environment),
            "error": cell.error, "notes": [*notes, *cell.notes], "input_shapes": cell.input_shapes,
            "settings": settings.to_json(), "created_at": now_iso()}
    return ThroughputRecord.from_json(jsonable(data), f"new throughput record {label}")


def measure_spec(catalog: Catalog, requested: Requested | str, settings: ThroughputSettings, *,
                 clock: Clock | None = None, log: Log | None = None) -> list[ThroughputRecord]:
    """Resolve, load and measure one encoder in this process; its records (not written). ``log`` gets a
    line per cell."""
    from benchmark.results.environment import environment
    from benchmark.throughput.peaks import device_name

    resolved = catalog.resolve("encoders", requested)
    encoder = resolved.load()
    require_example_batch(encoder, resolved.label)
    info = dict(encoder.info)  # before moving to the device: weight hashes read CPU tensors
    block = encoder_block(catalog, resolved, encoder, info)
    name = device_name(settings.device)
    env = environment(settings.device, {n: i.version for n, i in catalog.plugins.infos.items()})
    cells, notes = measure_encoder(encoder, settings, label=resolved.label, device_name=name, clock=clock,
                                   log=log)
    return [cell_record(c, block=block, settings=settings, device_name=name, environment=env, notes=notes)
            for c in cells]


# --- the worker process ---------------------------------------------------------------------------------------
def _worker_env() -> dict[str, str]:
    """The child's environment: ours, with this repbench's folder first on PYTHONPATH (a source checkout)."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_worker(requested: str, settings: ThroughputSettings, *, log: Log | None = None) -> list[ThroughputRecord] | Failure:
    """Measure one encoder in a fresh ``python -m benchmark.throughput.worker`` process; its stderr is
    relayed to ``log`` line by line. Returns the validated records, or a :class:`Failure`."""
    with tempfile.TemporaryDirectory(prefix="repbench-throughput-") as tmp:
        job, out = Path(tmp) / "job.json", Path(tmp) / "out.json"
        job.write_text(json.dumps({"encoder": requested, "settings": settings.to_json()}))
        cmd = [sys.executable, "-m", "benchmark.throughput.worker", str(job), str(out)]
        tail: deque[str] = deque(maxlen=40)
        with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              env=_worker_env()) as proc:
            assert proc.stderr is not None
            for line in proc.stderr:
                tail.append(line.rstrip("\n"))
                if log is not None:
                    log(line.rstrip("\n"))
            code = proc.wait()
        if code != 0 or not out.is_file():
            return Failure(requested, "WorkerCrashed", f"the worker measuring {requested!r} exited with status "
                           f"{code}; its last output:\n" + "\n".join(tail))
        return _read_worker_output(requested, json.loads(out.read_text()))


def _read_worker_output(requested: str, data: Mapping[str, Any]) -> list[ThroughputRecord] | Failure:
    if "failure" in data:
        f = data["failure"]
        return Failure(requested, str(f["type"]), str(f["message"]), str(f.get("traceback", "")))
    where = f"worker output for {requested!r}"
    try:
        return [ThroughputRecord.from_json(r, where) for r in data["records"]]
    except RecordError as exc:
        return Failure(requested, type(exc).__name__, str(exc))


def failure_of(requested: str, exc: BaseException) -> Failure:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]
    return Failure(requested, type(exc).__name__, str(exc), tb)


# --- the whole run ---------------------------------------------------------------------------------------------
def run_throughput(catalog: Catalog, encoders: Sequence[Requested | str], settings: ThroughputSettings, *,
                   results_dir: Path | str | None = "results", isolate: bool = True, log: Log | None = None,
                   clock: Clock | None = None) -> RunResult:
    """Measure every encoder (see the module docstring) and write each record into ``results_dir`` (None:
    write nothing). Names and options are resolved before anything runs."""
    requests = [parse(e) if isinstance(e, str) else e for e in encoders]
    labels = {str(r): catalog.resolve("encoders", r).label for r in requests}  # fail fast on names / options
    result = RunResult()
    for i, req in enumerate(requests, 1):
        if log is not None:
            log(f"[{i}/{len(requests)}] {labels[str(req)]} on {settings.device}")
        outcome: list[ThroughputRecord] | Failure
        if isolate:
            outcome = run_worker(str(req), settings, log=log)
        else:
            try:
                outcome = measure_spec(catalog, req, settings, clock=clock, log=log)
            except Exception as exc:
                outcome = failure_of(str(req), exc)
        if isinstance(outcome, Failure):
            result.failures.append(outcome)
            continue
        result.records += outcome
        if results_dir is not None:
            result.paths += [write_throughput(results_dir, r) for r in outcome]
    return result
