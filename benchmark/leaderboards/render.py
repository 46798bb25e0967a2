"""A :class:`~benchmark.leaderboards.board.Board` as text: markdown (tabulate), LaTeX (booktabs), JSON, and the
long-form CSV of its records; :func:`write_board` writes the whole set into a folder.

Every string from records is escaped for its format (markdown via :func:`~benchmark.leaderboards.tables.md_escape`,
LaTeX special characters backslash-escaped). Headers are short labels; what each stands for is in the legend
under its table, with the aggregation that ranks the rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.atomic import write_text
from benchmark.leaderboards.aggregate import TITLES
from benchmark.leaderboards.board import Board, Cell, Row, Table
from benchmark.leaderboards.kinds import kinds_markdown
from benchmark.leaderboards.quality import QUALITY_COLUMNS, THROUGHPUT_COLUMNS
from benchmark.leaderboards.tables import md_escape
from benchmark.results.record import Record
from benchmark.results.throughput import ThroughputRecord

AGG_COLUMNS = ["borda", "rank", "mean", "norm"]
CI_NOTE = ("Cells: the primary metric in percent ± half the width of its 95% confidence interval (bootstrap over "
           "test examples; Student t over draws for few-shot), or ± the standard deviation over seeds where "
           "(n=…) shows; the best per column is marked.")


def _agg_note(t: Table) -> str:
    return (f"Rows ranked by {TITLES[t.ranked_by]}, over the {len(t.columns)} dataset(s) every ranked encoder has. "
            "borda: Borda count (per dataset, n − rank among the n ranked encoders, ties sharing the average rank; "
            "summed), rank: mean rank (1 = best), mean: mean score, norm: mean of (score − floor)/(100 − floor) "
            f"with floor = {t.floor}.")


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def cell_text(cell: Cell | None) -> str:
    """``97.3±0.6``, ``97.3±0.4 (n=3)``, ``error`` or ``–`` (no record)."""
    if cell is None:
        return "–"
    if cell.value is None:
        return cell.status
    text = f"{cell.value:.1f}" + ("" if cell.half is None else f"±{cell.half:.1f}")
    return text + (f" (n={cell.seeds})" if cell.seeds > 1 else "")


def _grid(t: Table, mark: Callable[[str], str], esc: Callable[[str], str]) -> tuple[list[str], list[list[str]]]:
    head = ["encoder", *(esc(c.key) for c in t.columns), *AGG_COLUMNS]
    rows = []
    for r in t.rows:
        cells = [mark(cell_text(r.cells.get(c.key))) if r.cells.get(c.key, Cell(None)).best
                 else cell_text(r.cells.get(c.key)) for c in t.columns]
        rows.append([esc(r.key), *cells, _fmt(r.borda, "g"), _fmt(r.mean_rank, ".2f"), _fmt(r.mean, ".1f"),
                     _fmt(r.normalized, ".1f")])
    return head, rows


def _unranked_text(r: Row, t: Table) -> str:
    have = [f"{c.key} {cell_text(r.cells[c.key])}" for c in t.columns if c.key not in r.missing and c.key in r.cells]
    lacks = [f"{k} ({r.cells[k].status})" if k in r.cells else k for k in r.missing]
    return f"lacks {', '.join(lacks)}" + (f"; has {', '.join(have)}" if have else "")


def _legend(t: Table) -> list[str]:
    lines = [_agg_note(t)]
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


def table_markdown(t: Table) -> str:
    head, rows = _grid(t, lambda s: f"**{s}**", md_escape)
    body = github_table(head, rows) if rows else "(no encoder has every dataset of this table)"
    parts = [f"### {md_escape(t.title)}", body, *(md_escape(x) for x in _legend(t))]
    if t.unranked:
        parts.append("Not ranked (missing cells):\n" + "\n".join(
            f"- {md_escape(r.key)}: {md_escape(_unranked_text(r, t))}" for r in t.unranked))
    return "\n\n".join(parts)


def _number_rows(rows: Sequence[dict[str, Any]], columns: list[str]) -> list[list[str]]:
    def show(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}"
        return str(v)

    return [[show(r.get(c)) for c in columns] for r in rows]


def to_markdown(board: Board) -> str:
    """Every table with its legend, the suite's lacking cells, throughput and quality vs throughput."""
    parts = []
    if board.suite:
        head = (f"Suite {md_escape(board.suite['name'])} (version {board.suite['version']}, plugin "
                f"{md_escape(str(board.suite['plugin']))}), ranked by {TITLES[board.suite['aggregation']]}.")
        lacks = [f"- {md_escape(e)} lacks {md_escape(', '.join(cells))}" for e, cells in board.lacking.items()]
        parts.append("\n\n".join([head, "\n".join(lacks)]) if lacks else head)
    parts += [table_markdown(t) for t in board.tables] or ([] if board.throughput else ["(no results)"])
    if board.tables:
        parts.append(CI_NOTE)
    if board.kinds:
        parts.append(kinds_markdown(board.kinds))
    for title, rows, columns in (("Throughput", board.throughput, THROUGHPUT_COLUMNS),
                                 ("Quality vs throughput", board.quality_vs_throughput, QUALITY_COLUMNS)):
        if rows:
            cells = [[md_escape(x) for x in row] for row in _number_rows(rows, columns)]
            parts.append(f"### {title}\n\n" + github_table(columns, cells))
    return "\n\n".join(parts) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "–": "--",
        "−": "$-$", "…": r"\ldots{}", "\n": " ", "\r": " "}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def table_latex(t: Table) -> str:
    """One booktabs tabular in a ``table`` float, its legend below as a footnote-size paragraph."""
    head, rows = _grid(t, lambda s: f"\\textbf{{{tex_escape(s)}}}", tex_escape)
    rows = [[c if c.startswith("\\textbf") else (tex_escape(c) if i else c) for i, c in enumerate(r)] for r in rows]
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{tex_escape(t.title)}}}",
             "\\begin{tabular}{l" + "r" * (len(head) - 1) + "}", "\\toprule", " & ".join(head) + " \\\\",
             "\\midrule", *(" & ".join(r) + " \\\\" for r in rows), "\\bottomrule", "\\end{tabular}",
             "\\par\\footnotesize " + " ".join(tex_escape(x) for x in _legend(t))]
    if t.unranked:
        lines.append(" Not ranked: " + "; ".join(tex_escape(f"{r.key}: {_unranked_text(r, t)}") for r in t.unranked))
    return "\n".join([*lines, "\\end{table}"])


def to_latex(board: Board) -> str:
    """Every table as booktabs LaTeX (needs ``\\usepackage{booktabs}``)."""
    if not board.tables:
        return "% no results\n"
    return "% " + tex_escape(CI_NOTE) + "\n" + "\n\n".join(table_latex(t) for t in board.tables) + "\n"


def to_json(board: Board) -> str:
    """The board as JSON; :meth:`Board.from_json` of its parsed value gives the board back."""
    return json.dumps(board.to_json(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _flat(objects: Sequence[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.json_normalize(list(objects), sep=".")
    for col in frame.columns:  # lists (classes, CIs, rounds) as JSON, not Python reprs
        frame[col] = frame[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
    return frame


def records_csv(records: Sequence[Record]) -> str:
    """The long form: one row per record, every field flattened (``encoder.label``, ``metrics.top1``, ...)."""
    return _flat([r.to_json() for r in records]).to_csv(index=False) if records else ""


def throughput_csv(records: Sequence[ThroughputRecord]) -> str:
    return _flat([r.to_json() for r in records]).to_csv(index=False) if records else ""


def write_board(out_dir: Path | str, board: Board, records: Sequence[Record] = (),
                throughput: Sequence[ThroughputRecord] = (), *, page: bool = True,
                title: str = "repbench leaderboard", published: Sequence[Record] = (),
                log: Callable[[str], None] | None = None) -> list[Path]:
    """Write the whole set into ``out_dir`` (created): ``leaderboard.md``, ``leaderboard.tex``,
    ``leaderboard.json``, ``records.csv`` (long form), with throughput records ``throughput.csv``, and with
    ``page`` the plots (``plots/``, PNG and SVG; skipped with a note when matplotlib is missing) and one
    self-contained ``index.html``. ``board``, ``records`` and ``throughput`` are the measured ones;
    ``published`` records (``repbench import``) appear on the page in their own section only. Each file is
    written atomically. Returns the paths written."""
    written = _write_texts(Path(out_dir), board, records, throughput)
    if page:
        written += _write_page(Path(out_dir), board, records, throughput, title, published, log)
    return written


def _write_page(out: Path, board: Board, records: Sequence[Record], throughput: Sequence[ThroughputRecord],
                title: str, published: Sequence[Record], log: Callable[[str], None] | None) -> list[Path]:
    from benchmark.leaderboards.sections import board_sections, suite_intro
    from benchmark.leaderboards.site import write_site

    try:
        import matplotlib  # noqa: F401
        plots = True
    except ImportError:
        plots = False
    site = write_site(out, title, board_sections(board, records), [*records, *published], throughput,
                      intro=suite_intro(board), plots=plots)
    if not plots and log:
        log("plots skipped: matplotlib is not installed (pip install 'repbench[plots]')")
    paths = [p for ps in site["plots"].values() for p in ps]
    return [site["page"], *paths]


def _write_texts(out: Path, board: Board, records: Sequence[Record],
                 throughput: Sequence[ThroughputRecord]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {"leaderboard.md": to_markdown(board), "leaderboard.tex": to_latex(board),
             "leaderboard.json": to_json(board), "records.csv": records_csv(records)}
    if throughput:
        files["throughput.csv"] = throughput_csv(throughput)
    written = []
    for name, text in files.items():
        write_text(out / name, text)
        written.append(out / name)
    return written


#: ``--format`` -> the renderer of a whole board (csv needs the records, see :func:`records_csv`).
FORMATS: dict[str, Callable[[Board], str]] = {"markdown": to_markdown, "latex": to_latex, "json": to_json}
