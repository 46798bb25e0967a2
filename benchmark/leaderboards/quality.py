"""Throughput rows from throughput records, and quality joined with throughput by encoder label.

A throughput row is one measurement (encoder, device, precision, batch size); failed ones (``oom``, ``error``)
stay, with their status, so a table never hides that a batch size did not fit. The join pairs each ranked row of
each quality table with the encoder's fastest ok measurement (same encoder label).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from benchmark.leaderboards.model import Table
from benchmark.results.throughput import ThroughputRecord

THROUGHPUT_COLUMNS = ["encoder", "device", "precision", "batch", "status", "samples/s", "ms/batch", "params (M)",
                      "GFLOP/sample", "peak memory (MiB)"]
QUALITY_COLUMNS = ["encoder", "protocol", "modality", "mean", "borda rank", "samples/s", "device", "batch"]


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def throughput_rows(records: Iterable[ThroughputRecord]) -> list[dict[str, Any]]:
    """One row per measurement, sorted by encoder, device, precision and batch size; numbers unrounded."""
    rows = []
    for r in records:
        m = r.metrics
        params, flops, mem = _num(m.get("params") or r.encoder.get("params")), _num(m.get("flops_per_sample")), \
            _num(m.get("peak_memory_bytes"))
        rows.append({"encoder": r.label, "device": r.device_name or r.device, "precision": r.precision,
                     "batch": r.batch_size, "status": r.status, "samples/s": _num(m.get("samples_per_s")),
                     "ms/batch": _num(m.get("ms_per_batch")), "params (M)": None if params is None else params / 1e6,
                     "GFLOP/sample": None if flops is None else flops / 1e9,
                     "peak memory (MiB)": None if mem is None else mem / 2**20})
    return sorted(rows, key=lambda x: (x["encoder"], x["device"], x["precision"], x["batch"]))


def quality_vs_throughput(tables: Sequence[Table], speed: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per ranked row of each table whose encoder has an ok measurement: its mean and Borda rank beside the
    fastest measurement's samples/s, device and batch size."""
    fastest: dict[str, dict[str, Any]] = {}
    for row in speed:
        if row["status"] == "ok" and row["samples/s"] is not None and \
                row["samples/s"] > fastest.get(row["encoder"], {}).get("samples/s", -1.0):
            fastest[row["encoder"]] = row
    out = []
    for t in tables:
        for r in t.rows:
            best = fastest.get(r.label)
            if best is not None:
                out.append({"encoder": r.label, "protocol": t.protocol, "modality": t.modality, "mean": r.mean,
                            "borda rank": r.borda_rank, "samples/s": best["samples/s"], "device": best["device"],
                            "batch": best["batch"]})
    return out
