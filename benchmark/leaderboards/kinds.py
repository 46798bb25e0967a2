"""Per-task-kind means for the board (MTEB's per-category averages), beside the Borda / mean-rank tables.

A record's task kind is its dataset's ``kind`` (:data:`benchmark.specs.KINDS`; records without one are
``classification``, as every record made before kinds existed). For each kind, its *cells* are the (dataset,
protocol) pairs of that kind with a number; an encoder's kind mean is the mean of its cell values (the primary
metric in percent, averaged over seeds) over **every** cell of the kind, and is left empty, with the count it
lacks, when the encoder misses one: a mean over fewer tasks is not comparable. Never mixed into the ranks.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from benchmark.leaderboards.tables import md_escape


def kind_means(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One row per encoder: ``{"encoder", "<kind>": mean or None, "<kind> cells": "have/all"}`` for every kind
    present in ``frame`` (the board's cells frame, with ``kind``, ``value`` in [0, 1] and ``status``)."""
    if not len(frame) or "kind" not in frame:
        return []
    ok = frame[(frame["status"] == "ok") & frame["value"].notna()]
    cells = ok.groupby(["kind", "dataset", "protocol", "encoder"], sort=True)["value"].mean().reset_index()
    kinds = sorted(cells["kind"].unique(), key=lambda k: (k != "classification", k))
    rows = []
    for encoder in sorted(frame["encoder"].unique()):
        row: dict[str, Any] = {"encoder": encoder}
        for kind in kinds:
            of_kind = cells[cells["kind"] == kind]
            total = len(of_kind[["dataset", "protocol"]].drop_duplicates())
            mine = of_kind[of_kind["encoder"] == encoder]
            row[kind] = 100 * float(mine["value"].mean()) if len(mine) == total and total else None
            row[f"{kind} cells"] = f"{len(mine)}/{total}"
        rows.append(row)
    return rows


def kinds_markdown(rows: list[dict[str, Any]]) -> str:
    """The per-kind means as a markdown table (empty string without rows)."""
    if not rows:
        return ""
    kinds = [k for k in rows[0] if k != "encoder" and not k.endswith(" cells")]
    head = "| encoder | " + " | ".join(f"{md_escape(k)} mean (cells)" for k in kinds) + " |"
    lines = [head, "|" + "---|" * (len(kinds) + 1)]
    for r in rows:
        shown = [("—" if r[k] is None else f"{r[k]:.1f}") + f" ({r[f'{k} cells']})" for k in kinds]
        lines.append(f"| {md_escape(r['encoder'])} | " + " | ".join(shown) + " |")
    note = ("Per task kind: the mean of an encoder's primary metrics (percent) over every cell of that kind; "
            "empty where it lacks a cell. Not used for ranking.")
    return "### Per-kind means\n\n" + "\n".join(lines) + "\n\n" + note
