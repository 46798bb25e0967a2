"""The methods table: pretraining method x backbone x dataset, with kNN and linear (95% CIs), the budget, the steps
run, wall time, samples/s and peak memory, beside reference rows (the same architecture at random init, raw
pixels, any other encoder evaluated on the same data).

Built from ordinary evaluation records: an encoder ``run:<folder>`` carries its pretraining in
``encoder.pretraining`` (method, recipe, budget, what the loop measured).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from benchmark.leaderboards.tables import md_escape
from benchmark.results.record import Record

PROTOCOLS = ("knn", "linear")
COLUMNS = ["method", "backbone", "trained on", "budget", "steps", "wall time", "samples/s", "peak memory",
           "evaluated on", *PROTOCOLS]


def _plain(record: Record) -> Mapping[str, Any]:
    return record.to_json()


def _budget(budget: Mapping[str, Any] | None) -> str:
    if not budget:
        return "–"
    units = {"epochs": "epochs", "steps": "steps", "seconds": "s"}
    return ", ".join(f"{v:g} {units.get(k, k)}" for k, v in budget.items())


def _bytes(n: Any) -> str:
    return f"{n / 2**20:.0f} MiB" if isinstance(n, (int, float)) and n > 0 else "–"


def _identity(enc: Mapping[str, Any]) -> dict[str, str]:
    """The descriptive columns of an encoder: its pretraining when it is a run, else what it is."""
    pre = enc.get("pretraining")
    if isinstance(pre, Mapping):
        res = pre.get("result") or {}
        labels = " (uses labels)" if pre.get("uses_labels") else ""
        return {"method": f"{pre.get('method')}{labels}", "backbone": str(pre.get("backbone")),
                "trained on": f"{(pre.get('data') or {}).get('dataset')} ({(pre.get('data') or {}).get('size')})",
                "budget": _budget(pre.get("budget")), "steps": str(res.get("steps", "–")),
                "wall time": f"{res['seconds']:.0f} s" if isinstance(res.get("seconds"), (int, float)) else "–",
                "samples/s": f"{res['samples_per_s']:.0f}" if isinstance(res.get("samples_per_s"), (int, float))
                else "–", "peak memory": _bytes(res.get("peak_memory_bytes"))}
    weights = str(enc.get("weights") or "")
    what = "none: raw pixels" if enc.get("name") == "pixels" else \
        "none: random init" if weights.startswith("random-init") else f"none: {weights or 'as published'}"
    return {"method": what, "backbone": str(enc.get("label") or enc.get("name")), "trained on": "–",
            "budget": "–", "steps": "–", "wall time": "–", "samples/s": "–", "peak memory": "–"}


def methods_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per (encoder, evaluation dataset) with the kNN and linear cells as ``value ± half-CI`` (percent);
    the newest ok record of a cell wins."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    newest: dict[tuple[str, str, str], str] = {}
    for rec in map(_plain, records):
        proto = rec["protocol"]["name"]
        if rec.get("status") != "ok" or proto not in PROTOCOLS:
            continue
        enc, dset = rec["encoder"], rec["dataset"]
        key = (str(enc.get("label") or enc["name"]), str(dset.get("label") or dset["name"]))
        stamp = str(rec.get("created_at") or "")
        if newest.get((key[0], key[1], proto), "") > stamp:
            continue
        newest[(key[0], key[1], proto)] = stamp
        row = rows.setdefault(key, {**_identity(enc), "evaluated on": key[1]})
        m = rec.get("metrics") or {}
        value, ci = m.get("top1"), m.get("top1_ci95")
        if isinstance(value, (int, float)):
            half = f" ± {(ci[1] - ci[0]) * 50:.1f}" if isinstance(ci, list) and len(ci) == 2 else ""
            row[proto] = f"{value * 100:.1f}{half}"
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS).fillna("–")
    if frame.empty:
        return frame
    reference = frame["method"].str.startswith("none")
    runs_on = set(frame.loc[~reference, "evaluated on"])
    if runs_on:  # references only where a run was evaluated (no text encoders beside image methods)
        frame = frame[~reference | frame["evaluated on"].isin(runs_on)]
    order = frame["method"].str.startswith("none").map({True: 1, False: 0})
    return (frame.assign(_o=order).sort_values(["evaluated on", "_o", "method", "backbone"]).drop(columns="_o")
            .reset_index(drop=True))  # a fresh index: the page shows no raw row numbers


NOTE = ("kNN and linear: top-1 in percent on the evaluation dataset's test split, ± half the width of the 95% "
        "bootstrap confidence interval. Rows whose method is `none` are references (the same architecture at "
        "random init, raw pixels). Wall time, samples/s and peak memory (CUDA max allocated, or peak RSS on the "
        "CPU) are the pretraining loop's own.")


def methods_markdown(records: Iterable[Record]) -> str:
    """The methods table as GitHub markdown (every string escaped) and the note that explains it."""
    from tabulate import tabulate

    frame = methods_frame(records)
    if frame.empty:
        return "(no kNN or linear results)"
    cells = [[md_escape(str(v)) for v in row] for row in frame.itertuples(index=False)]
    table = tabulate(cells, headers=[md_escape(c) for c in frame.columns], tablefmt="github", disable_numparse=True)
    return f"{table}\n\n{NOTE}"
