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

from benchmark.leaderboards.aggregate import TITLES
from benchmark.leaderboards.grid import CI_NOTE, github_table, grid, legend, number_rows, unranked_text
from benchmark.leaderboards.kinds import kinds_markdown
from benchmark.leaderboards.model import Board, Table
from benchmark.leaderboards.quality import QUALITY_COLUMNS, THROUGHPUT_COLUMNS
from benchmark.leaderboards.safe_text import csv_safe, visible
from benchmark.leaderboards.tables import md_escape
from benchmark.results.record import Record
from benchmark.results.throughput import ThroughputRecord
from benchmark.storage.atomic import write_text


def table_markdown(t: Table) -> str:
    head, rows = grid(t, lambda s: f"**{s}**", md_escape)
    body = github_table(head, rows) if rows else "(no encoder has every dataset of this table)"
    parts = [f"### {md_escape(t.title)}", body, *(md_escape(x) for x in legend(t))]
    if t.unranked:
        parts.append("Not ranked (missing cells):\n" + "\n".join(
            f"- {md_escape(r.key)}: {md_escape(unranked_text(r, t))}" for r in t.unranked))
    return "\n\n".join(parts)


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
            cells = [[md_escape(x) for x in row] for row in number_rows(rows, columns)]
            parts.append(f"### {title}\n\n" + github_table(columns, cells))
    return "\n\n".join(parts) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "–": "--",
        "−": "$-$", "…": r"\ldots{}", "\n": " ", "\r": " "}


def tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in visible(text))


def table_latex(t: Table) -> str:
    """One booktabs tabular in a ``table`` float, its legend below as a footnote-size paragraph."""
    head, rows = grid(t, lambda s: f"\\textbf{{{tex_escape(s)}}}", tex_escape)
    rows = [[c if c.startswith("\\textbf") else (tex_escape(c) if i else c) for i, c in enumerate(r)] for r in rows]
    lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{tex_escape(t.title)}}}",
             "\\begin{tabular}{l" + "r" * (len(head) - 1) + "}", "\\toprule", " & ".join(head) + " \\\\",
             "\\midrule", *(" & ".join(r) + " \\\\" for r in rows), "\\bottomrule", "\\end{tabular}",
             "\\par\\footnotesize " + " ".join(tex_escape(x) for x in legend(t))]
    if t.unranked:
        lines.append(" Not ranked: " + "; ".join(tex_escape(f"{r.key}: {unranked_text(r, t)}") for r in t.unranked))
    return "\n".join([*lines, "\\end{table}"])


def to_latex(board: Board) -> str:
    """Every table as booktabs LaTeX (needs ``\\usepackage{booktabs}``)."""
    if not board.tables:
        return "% no results\n"
    return "% " + tex_escape(CI_NOTE) + "\n" + "\n\n".join(table_latex(t) for t in board.tables) + "\n"


def to_json(board: Board) -> str:
    """The board as JSON; :meth:`Board.from_json` of its parsed value gives the board back."""
    return json.dumps(board.to_json(), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, name + "."))
        else:  # lists (classes, CIs, rounds) as JSON, not Python reprs
            out[name] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return out


def _flat(objects: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per object, nested keys dotted; values keep their JSON types (an integer stays ``3371008``, never
    ``3371008.0`` as a float column with gaps would print it)."""
    return pd.DataFrame([_flatten(o) for o in objects], dtype=object)


def records_csv(records: Sequence[Record]) -> str:
    """The long form: one row per record, every field flattened (``encoder.label``, ``metrics.top1``, ...)."""
    return csv_safe(_flat([r.to_json() for r in records])).to_csv(index=False) if records else ""


def throughput_csv(records: Sequence[ThroughputRecord]) -> str:
    return csv_safe(_flat([r.to_json() for r in records])).to_csv(index=False) if records else ""


def write_board(out_dir: Path | str, board: Board, records: Sequence[Record] = (),
                throughput: Sequence[ThroughputRecord] = (), *, page: bool = True,
                title: str | None = None, published: Sequence[Record] = (),
                log: Callable[[str], None] | None = None) -> list[Path]:
    """Write the whole set into ``out_dir`` (created): ``leaderboard.md``, ``leaderboard.tex``,
    ``leaderboard.json``, ``records.csv`` (long form), with throughput records ``throughput.csv``, and with
    ``page`` the plots (``plots/``, PNG and SVG; skipped with a note when matplotlib is missing) and one
    self-contained ``index.html``. ``board``, ``records`` and ``throughput`` are the measured ones;
    ``published`` records (``repbench import``) appear in their own section of the page and of the markdown. Each file is
    written atomically. ``title``: the page's, by default :func:`~benchmark.leaderboards.pageinfo.page_title`.
    Returns the paths written."""
    written = _write_texts(Path(out_dir), board, records, throughput, published)
    if page:
        written += _write_page(Path(out_dir), board, records, throughput, title, published, log)
    return written


def _write_page(out: Path, board: Board, records: Sequence[Record], throughput: Sequence[ThroughputRecord],
                title: str | None, published: Sequence[Record], log: Callable[[str], None] | None) -> list[Path]:
    from benchmark.leaderboards.pageinfo import about_section, how_to_read, page_title, plot_names
    from benchmark.leaderboards.sections import board_sections, suite_intro
    from benchmark.leaderboards.site import write_site

    try:
        import matplotlib  # noqa: F401
        plots = True
    except ImportError:
        plots = False
    head = [about_section(out, records, throughput), how_to_read(board)]
    site = write_site(out, title or page_title(board, records, throughput),
                      [s for s in head if s is not None] + board_sections(board, records), [*records, *published],
                      throughput, intro=suite_intro(board), plots=plots, names=plot_names(board))
    if not plots and log:
        log("plots skipped: matplotlib is not installed (pip install 'repbench[plots]')")
    paths = [p for ps in site["plots"].values() for p in ps]
    return [site["page"], *paths]


def _write_texts(out: Path, board: Board, records: Sequence[Record],
                 throughput: Sequence[ThroughputRecord], published: Sequence[Record] = ()) -> list[Path]:
    from benchmark.leaderboards.published_md import with_published

    out.mkdir(parents=True, exist_ok=True)
    files = {"leaderboard.md": with_published(to_markdown(board), published, records),
             "leaderboard.tex": to_latex(board),
             "leaderboard.json": to_json(board), "records.csv": records_csv(records)}
    if throughput:
        files["throughput.csv"] = throughput_csv(throughput)
    written = []
    for name, text in files.items():
        write_text(out / name, text)
        written.append(out / name)
    return written
