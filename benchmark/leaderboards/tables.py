"""Leaderboards: result records -> a pandas DataFrame -> tables (markdown via tabulate, CSV, HTML).

Rows are encoders; columns are (dataset, protocol) pairs; a cell shows the protocol's primary metric in percent
with its 95% CI half-width. Failed cells show ``error``. When several records exist for one cell (reruns,
different seeds) the newest per seed is kept and seeds are averaged.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

import pandas as pd

from benchmark.leaderboards.safe_text import csv_safe, visible
from benchmark.results.record import Record
from benchmark.results.store import newest_per_cell

COLUMNS = ["encoder", "dataset", "protocol", "modality", "seed", "status", "metric", "value", "ci_low", "ci_high",
           "n_test", "weights", "embed_dim", "params", "total_s", "created_at", "id"]


def to_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per record with the primary metric and its CI flattened out; the newest record per cell and
    seed."""
    rows = []
    for r in newest_per_cell(records):
        ci_low, ci_high = r.ci
        rows.append({
            "encoder": r.encoder.display,
            "dataset": r.dataset.display,
            "protocol": r.protocol.display,
            "modality": r.dataset.modality,
            "seed": r.seed,
            "status": r.status,
            "metric": r.metric,
            "value": r.value,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "n_test": r.n_test,
            "weights": r.encoder.weights,
            "embed_dim": r.encoder.embed_dim,
            "params": r.encoder.params,
            "total_s": r.total_s,
            "created_at": r.created_at,
            "id": r.id,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


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


#: The one-line note under every table (markdown and HTML) saying what ± and ``mean`` are.
NOTE = ("± is half the width of the 95% confidence interval (bootstrap over test examples; Student t over draws "
        "for few-shot), or the standard deviation over seeds where a cell shows (n=…); `mean` averages an "
        "encoder's cells.")

_MD_ESCAPES = str.maketrans({"\\": "\\\\", "`": "\\`", "|": "\\|", "&": "&amp;", "<": "&lt;", ">": "&gt;"})
#: runs of the emphasis and strikethrough characters
_EMPHASIS = re.compile(r"\*+|_+|~+")


def _emphasis(m: re.Match[str]) -> str:
    """A run of ``*``, ``_`` or ``~`` backslash-escaped when it could open or close emphasis: next to a
    non-space character; ``_`` inside a word (``vit_small``) never does. A lone `` * `` mark stays."""
    text, run = m.string, m.group()
    before = text[m.start() - 1] if m.start() else " "
    after = text[m.end()] if m.end() < len(text) else " "
    if before.isspace() and after.isspace():
        return run
    if run[0] == "_" and before.isalnum() and after.isalnum():
        return run
    return "".join("\\" + ch for ch in run)


_NEWLINES = ("\r\n", "\r", "\n", "\u2028", "\u2029")


def md_escape(text: str) -> str:
    """``text`` safe in a GitHub markdown table cell: ``\\ ` | * ~`` backslash-escaped, ``_`` too where it could
    start or end emphasis, ``](`` so no link forms, ``& < >`` as entities (no raw HTML gets through), line breaks
    as ``<br>``, control and bidi-override characters as U+FFFD. Text without those characters is unchanged."""
    text = visible(text).translate(_MD_ESCAPES)
    text = _EMPHASIS.sub(_emphasis, text)  # no emphasis, no strikethrough
    text = text.replace("](", "\\](")  # no [text](link)
    for newline in _NEWLINES:
        text = text.replace(newline, "<br>")
    return text


def _md_cell(value: Any) -> Any:
    return md_escape(value) if isinstance(value, str) else value


def cells_markdown(df: pd.DataFrame) -> str:
    """A GitHub markdown table with :data:`NOTE` below it; every label (row, header) and cell is escaped with
    :func:`md_escape`. ``(no results)`` when there are none."""
    from tabulate import tabulate

    t = table(df)
    if t.empty:
        return "(no results)"
    t = t.rename(index=md_escape, columns=md_escape).map(_md_cell)
    t.index.name = md_escape(str(t.index.name))
    text = tabulate(t, headers="keys", tablefmt="github", disable_numparse=True, showindex=True)
    return f"{text}\n\n{NOTE}"


def to_csv(df: pd.DataFrame) -> str:
    """The long form (one row per record): what people load into their own analysis (string cells quoted
    against formula injection)."""
    return csv_safe(df).to_csv(index=False)


def to_html(df: pd.DataFrame) -> str:
    """A standalone HTML table with :data:`NOTE` below it; every string from the records is escaped."""
    t = table(df)
    if t.empty:
        return "<p>(no results)</p>\n"
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in ["encoder", *t.columns])
    body = "".join(
        "<tr>" + f"<th>{esc(str(idx))}</th>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>"
        for idx, row in zip(t.index, t.itertuples(index=False), strict=True)
    )
    note = esc(NOTE, quote=False).replace("`mean`", "<code>mean</code>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n<p>{note}</p>\n"
