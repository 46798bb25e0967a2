"""Throughput records: one versioned JSON object per (encoder, device, precision, batch size, ...) measurement.

A throughput record is not an evaluation record: it carries ``"kind": "throughput"`` (evaluation records have
no ``kind``), its own ``schema_version`` (:data:`SCHEMA_VERSION`) and lives in files named
``throughput__<encoder slug>__<device>__<precision>__b<batch>__<id>.json`` (:func:`throughput_filename`), which
never equal an evaluation record's ``<enc>__<data>__<protocol>__s<seed>__<id>.json``: the part before the id
is ``b<batch>`` here and ``s<seed>`` there.

``status`` is ``"ok"`` (``timing`` and ``metrics.samples_per_s`` present), ``"oom"`` (the batch size ran out of
memory: recorded as it was asked, never shrunk) or ``"error"``; both failures carry ``error`` (type, message).
:meth:`ThroughputRecord.from_json` checks a loaded object field by field and raises
:class:`~benchmark.results.record.InvalidRecord` naming the file and the dotted field; ``to_json`` gives the
object back (unknown top-level keys are kept in ``extra``). :func:`write_throughput` writes atomically.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.results.files import read_json, slug
from benchmark.results.record import Reader, is_finite, is_int, now_iso
from benchmark.runtime.devices import PRECISIONS
from benchmark.storage.atomic import write_json
from benchmark.storage.digest import digest

KIND = "throughput"
SCHEMA_VERSION = 1
STATUSES = ("ok", "oom", "error")
#: Metrics that, when present and not null, must be finite numbers >= 0.
NUMERIC_METRICS = ("samples_per_s", "samples_per_s_min", "samples_per_s_max", "ms_per_batch", "tokens_per_s",
                   "peak_memory_bytes", "params", "flops_per_sample", "achieved_flops_per_s",
                   "peak_flops_per_s", "fraction_of_peak", "measured_peak_flops_per_s",
                   "fraction_of_measured_peak")
_TOP = ("kind", "schema_version", "id", "created_at", "status", "encoder", "device", "device_name", "precision",
        "precision_ran", "batch_size", "seq_len", "channels_last", "compile", "timing", "metrics", "environment",
        "error", "notes")


def throughput_id(label: str, device: str, device_name: str, precision: str, batch_size: int,
                  seq_len: int | None, channels_last: bool, compile: bool) -> str:
    """A stable 12-hex id of one measurement's configuration (a rerun of it replaces the file)."""
    return digest({"k": KIND, "e": label, "d": device, "n": device_name, "p": precision, "b": batch_size,
                   "s": seq_len, "cl": channels_last, "c": compile}, 12)


@dataclass(frozen=True)
class ThroughputRecord:
    """One throughput measurement (schema version 1). ``encoder`` holds at least ``name`` and ``label``;
    ``timing`` the raw rounds and their summary (null unless ok); ``metrics`` the derived numbers
    (:data:`NUMERIC_METRICS` and ``memory_source``, ``peak_source``, ``flops_uncounted``)."""

    id: str
    status: str
    encoder: dict[str, Any]
    device: str
    device_name: str
    precision: str
    precision_ran: str
    batch_size: int
    seq_len: int | None
    channels_last: bool
    compile: bool
    timing: dict[str, Any] | None
    metrics: dict[str, Any]
    environment: dict[str, Any]
    error: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.encoder["label"])

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in schema order, then the unknown keys it was read with."""
        out: dict[str, Any] = {"kind": KIND, "schema_version": SCHEMA_VERSION}
        out.update({k: getattr(self, k) for k in _TOP[2:]})
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "throughput record") -> ThroughputRecord:
        """Validate a loaded object and type it; raise :class:`InvalidRecord` naming ``where`` and the field."""
        c = Reader(data, where, what="a throughput record")
        d = c.data
        c.need("kind", d.get("kind") == KIND, repr(KIND))
        c.need("schema_version", d.get("schema_version") == SCHEMA_VERSION,
               f"{SCHEMA_VERSION} (this repbench reads throughput schema {SCHEMA_VERSION})")
        status = c.need("status", d.get("status") in STATUSES, " or ".join(map(repr, STATUSES)))
        typed = {
            "id": c.need("id", isinstance(d.get("id"), str) and bool(d.get("id")), "a non-empty string"),
            "created_at": c.need("created_at", isinstance(d.get("created_at"), str), "a string"),
            "device": c.need("device", isinstance(d.get("device"), str), "a string"),
            "device_name": c.need("device_name", isinstance(d.get("device_name"), str), "a string"),
            "precision": c.need("precision", d.get("precision") in PRECISIONS, f"one of {list(PRECISIONS)}"),
            "precision_ran": c.need("precision_ran", isinstance(d.get("precision_ran"), str), "a string"),
            "batch_size": c.need("batch_size", is_int(d.get("batch_size")) and d["batch_size"] > 0,
                                 "a positive integer"),
            "seq_len": c.need("seq_len", d.get("seq_len") is None or (is_int(d["seq_len"]) and d["seq_len"] > 0),
                              "a positive integer or null"),
            "channels_last": c.need("channels_last", isinstance(d.get("channels_last"), bool), "true or false"),
            "compile": c.need("compile", isinstance(d.get("compile"), bool), "true or false"),
            "environment": dict(c.need("environment", isinstance(d.get("environment"), Mapping), "an object")),
            "notes": list(c.need("notes", isinstance(d.get("notes"), list)
                                 and all(isinstance(n, str) for n in d["notes"]), "a list of strings")),
        }
        return cls(status=status, encoder=_encoder(c), timing=_timing(c, status), metrics=_metrics(c, status),
                   error=_error(c, status), extra={k: v for k, v in d.items() if k not in _TOP}, **typed)


def _encoder(c: Reader) -> dict[str, Any]:
    c.need("encoder", isinstance(c.data.get("encoder"), Mapping), "an object")
    e = Reader(c.data["encoder"], c.where, "encoder")
    for key in ("name", "label"):
        e.need(key, isinstance(e.data.get(key), str) and bool(e.data.get(key)), "a non-empty string")
    params = e.data.get("params")
    if params is not None and not (is_int(params) and params >= 0):
        e.fail("params", "a non-negative integer or null")
    return dict(e.data)


def _timing(c: Reader, status: str) -> dict[str, Any] | None:
    if status != "ok":
        c.need("timing", c.data.get("timing") is None or isinstance(c.data["timing"], Mapping),
               "an object or null")
        return None if c.data["timing"] is None else dict(c.data["timing"])
    c.need("timing", isinstance(c.data.get("timing"), Mapping), "an object (status is 'ok')")
    t = Reader(c.data["timing"], c.where, "timing")
    rounds = t.data.get("round_s")
    t.need("round_s", isinstance(rounds, list) and bool(rounds) and all(is_finite(r) and r > 0 for r in rounds),
           "a non-empty list of positive numbers")
    for key in ("warmup", "steps_per_round"):
        t.need(key, is_int(t.data.get(key)) and t.data[key] >= 0, "a non-negative integer")
    for key in ("median_s", "min_s", "max_s"):
        t.need(key, is_finite(t.data.get(key)) and t.data[key] > 0, "a positive number")
    if not t.data["min_s"] <= t.data["median_s"] <= t.data["max_s"]:
        t.fail("median_s", f"between min_s {t.data['min_s']} and max_s {t.data['max_s']}")
    return dict(t.data)


def _metrics(c: Reader, status: str) -> dict[str, Any]:
    c.need("metrics", isinstance(c.data.get("metrics"), Mapping), "an object")
    m = Reader(c.data["metrics"], c.where, "metrics")
    for key in NUMERIC_METRICS:
        value = m.data.get(key)
        if value is not None and not (is_finite(value) and value >= 0):
            m.fail(key, "a finite number >= 0 or null")
    if status == "ok":
        m.need("samples_per_s", is_finite(m.data.get("samples_per_s")) and m.data["samples_per_s"] > 0,
               "a positive number (status is 'ok')")
    uncounted = m.data.get("flops_uncounted")
    if uncounted is not None and uncounted != "unknown" and not (
            isinstance(uncounted, list) and all(isinstance(u, str) for u in uncounted)):
        m.fail("flops_uncounted", "a list of op names, 'unknown' or null")
    return dict(m.data)


def _error(c: Reader, status: str) -> dict[str, Any] | None:
    if status == "ok":
        c.need("error", c.data.get("error", 0) is None, "null (status is 'ok')")
        return None
    c.need("error", isinstance(c.data.get("error"), Mapping), f"an object (status is {status!r})")
    e = Reader(c.data["error"], c.where, "error")
    for key in ("type", "message"):
        e.need(key, isinstance(e.data.get(key), str), "a string")
    return dict(e.data)


#: Every throughput record's file name starts with this (evaluation records never do).
PREFIX = "throughput__"


def is_throughput(data: Any) -> bool:
    """Whether a loaded JSON value claims to be a throughput record (``"kind": "throughput"``): what a scan
    of a results folder uses to tell them from evaluation records."""
    return isinstance(data, Mapping) and data.get("kind") == KIND


def throughput_filename(record: ThroughputRecord) -> str:
    """``throughput__<encoder slug>__<device>__<precision>__b<batch>__<id>.json``."""
    return (f"{PREFIX}{slug(record.label)}__{slug(record.device)}__{record.precision}"
            f"__b{record.batch_size}__{record.id}.json")


def write_throughput(results_dir: Path | str, record: ThroughputRecord | Mapping[str, Any]) -> Path:
    """Validate and write a record atomically into ``results_dir`` (created when missing); return the path."""
    typed = record if isinstance(record, ThroughputRecord) else ThroughputRecord.from_json(record, "new record")
    data = typed.to_json()
    ThroughputRecord.from_json(data, f"new record {typed.label}")
    path = Path(results_dir) / throughput_filename(typed)
    write_json(path, data)
    return path


def read_throughput(path: Path | str) -> ThroughputRecord:
    """The validated throughput record in one file; raises :class:`InvalidRecord` naming the file."""
    return ThroughputRecord.from_json(read_json(Path(path)), str(path))
