"""Leaderboards: result records -> a pandas DataFrame -> tables (markdown via tabulate, CSV, HTML).

Rows are encoders; columns are (dataset, protocol) pairs; a cell shows the protocol's primary metric in percent
with its 95% CI half-width. Failed cells show ``error``. When several records exist for one cell (reruns,
different seeds) the newest per seed is kept and seeds are averaged.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

COLUMNS = ["encoder", "dataset", "protocol", "modality", "seed", "status", "metric", "value", "ci_low", "ci_high",
           "n_test", "weights", "embed_dim", "params", "total_s", "created_at", "id"]


def to_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record with the primary metric and its CI flattened out."""
    rows = []
    for r in records:
        metric = r["protocol"].get("primary_metric", "top1")
        m = r.get("metrics") or {}
        ci = m.get(f"{metric}_ci95") or [None, None]
        rows.append({
            "encoder": r["encoder"].get("label", r["encoder"]["name"]),
            "dataset": r["dataset"].get("label", r["dataset"]["name"]),
            "protocol": r["protocol"].get("label", r["protocol"]["name"]),
            "modality": r["dataset"].get("modality"),
            "seed": r.get("seed"),
            "status": r["status"],
            "metric": metric,
            "value": m.get(metric),
            "ci_low": ci[0],
            "ci_high": ci[1],
            "n_test": m.get("n_test"),
            "weights": r["encoder"].get("weights"),
            "embed_dim": r["encoder"].get("embed_dim"),
            "params": r["encoder"].get("params"),
            "total_s": (r.get("timings") or {}).get("total_s"),
            "created_at": r.get("created_at"),
            "id": r.get("id"),
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    if df.empty:
        return df
    # newest record per cell and seed wins (reruns overwrite the same file, but folders can be merged)
    df = df.sort_values("created_at").drop_duplicates(["encoder", "dataset", "protocol", "seed"], keep="last")
    return df.reset_index(drop=True)


def _cell_text(group: pd.DataFrame) -> str:
    ok = group[group["status"] == "ok"]
    if ok.empty or ok["value"].isna().all():
        return "error"
    value = ok["value"].mean() * 100
    if len(ok) == 1 and pd.notna(ok["ci_low"].iloc[0]):
        half = (ok["ci_high"].iloc[0] - ok["ci_low"].iloc[0]) * 50
        return f"{value:.1f} ± {half:.1f}"
    if len(ok) > 1:
        return f"{value:.1f} ± {ok['value'].std() * 100:.1f} (n={len(ok)})"
    return f"{value:.1f}"


def table(df: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard: encoders as rows, "dataset / protocol" columns, cells as text; best mean first."""
    if df.empty:
        return pd.DataFrame()
    cells = df.groupby(["encoder", "dataset", "protocol"], sort=True).apply(_cell_text, include_groups=False)
    wide = cells.unstack(["dataset", "protocol"]).sort_index(axis=1)
    wide.columns = [f"{d} / {p}" for d, p in wide.columns]
    ok = df[df["status"] == "ok"]
    means = ok.groupby(["encoder", "dataset", "protocol"])["value"].mean().groupby("encoder").mean()
    wide.insert(0, "mean", (means.reindex(wide.index) * 100).round(1))
    wide = wide.sort_values("mean", ascending=False, na_position="last")
    wide.index.name = "encoder"
    return wide.fillna("–")


def to_markdown(df: pd.DataFrame) -> str:
    from tabulate import tabulate

    t = table(df)
    if t.empty:
        return "(no results)"
    return tabulate(t, headers="keys", tablefmt="github", disable_numparse=True, showindex=True)


def to_csv(df: pd.DataFrame) -> str:
    """The long form (one row per record): what people load into their own analysis."""
    return df.to_csv(index=False)


def to_html(df: pd.DataFrame) -> str:
    """A standalone HTML table; every string from the records is escaped."""
    t = table(df)
    if t.empty:
        return "<p>(no results)</p>\n"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ["encoder", *t.columns])
    body = "".join(
        "<tr>" + f"<th>{html.escape(str(idx))}</th>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for idx, row in zip(t.index, t.itertuples(index=False), strict=True)
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n"
