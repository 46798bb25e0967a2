"""The grid a board table is drawn on, shared by every output format: cell text (``97.3±0.6``), the rows and
head of a ranked table, the unranked lines, the legend and number rows of throughput tables.

:mod:`benchmark.leaderboards.render` (markdown, LaTeX, JSON, CSV) and :mod:`benchmark.leaderboards.sections`
(the HTML page) draw with these, so every format shows the same cells.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from benchmark.leaderboards.aggregate import TITLES
from benchmark.leaderboards.model import BoardCell, Row, Table

AGG_COLUMNS = ["borda", "rank", "mean", "norm"]
CI_NOTE = ("Cells: the primary metric in percent ± half the width of its 95% confidence interval (bootstrap over "
           "test examples; Student t over draws for few-shot), or ± the standard deviation over seeds where "
           "(n=…) shows; the best per column is marked.")


def agg_note(t: Table) -> str:
    return (f"Rows ranked by {TITLES[t.ranked_by]}, over the {len(t.columns)} dataset(s) every ranked encoder has. "
            "borda: Borda count (per dataset, n − rank among the n ranked encoders, ties sharing the average rank; "
            "summed), rank: mean rank (1 = best), mean: mean score, norm: mean of (score − floor)/(100 − floor) "
            f"with floor = {t.floor}.")


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def cell_text(cell: BoardCell | None) -> str:
    """``97.3±0.6``, ``97.3±0.4 (n=3)``, ``error`` or ``–`` (no record)."""
    if cell is None:
        return "–"
    if cell.value is None:
        return cell.status
    text = f"{cell.value:.1f}" + ("" if cell.half is None else f"±{cell.half:.1f}")
    return text + (f" (n={cell.seeds})" if cell.seeds > 1 else "")


def grid(t: Table, mark: Callable[[str], str], esc: Callable[[str], str]) -> tuple[list[str], list[list[str]]]:
    head = ["encoder", *(esc(c.key) for c in t.columns), *AGG_COLUMNS]
    rows = []
    for r in t.rows:
        cells = [mark(cell_text(r.cells.get(c.key))) if r.cells.get(c.key, BoardCell(None)).best
                 else cell_text(r.cells.get(c.key)) for c in t.columns]
        rows.append([esc(r.key), *cells, _fmt(r.borda, "g"), _fmt(r.mean_rank, ".2f"), _fmt(r.mean, ".1f"),
                     _fmt(r.normalized, ".1f")])
    return head, rows


def unranked_text(r: Row, t: Table) -> str:
    have = [f"{c.key} {cell_text(r.cells[c.key])}" for c in t.columns if c.key not in r.missing and c.key in r.cells]
    lacks = [f"{k} ({r.cells[k].status})" if k in r.cells else k for k in r.missing]
    return f"lacks {', '.join(lacks)}" + (f"; has {', '.join(have)}" if have else "")


def legend(t: Table) -> list[str]:
    lines = [agg_note(t)]
    lines.append("Datasets: " + "; ".join(
        f"{c.key} = {c.label}" + "".join(f", {v}" for v in (f"{c.classes} classes" if c.classes else None,
                                                            f"{c.n_test:,} test examples" if c.n_test else None) if v)
        for c in t.columns) + ".")
    renamed = [r for r in [*t.rows, *t.unranked] if r.key != r.label]
    if renamed:
        lines.append("Encoders: " + "; ".join(f"{r.key} = {r.label}" for r in renamed) + ".")
    return lines


def github_table(head: list[str], rows: list[list[str]]) -> str:
    """A GitHub markdown table, first column left-aligned and the others right-aligned, padded only to the
    widest entry (tabulate pads headers by two more, which pushes wide boards off the screen)."""
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))) + " |"

    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), rule, *(line(r) for r in rows)])


def number_rows(rows: Sequence[dict[str, Any]], columns: list[str]) -> list[list[str]]:
    def show(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
        return str(v)

    return [[show(r.get(c)) for c in columns] for r in rows]
