"""A :class:`~benchmark.leaderboards.board.Board` as the sections of the HTML page
(:mod:`benchmark.leaderboards.page`): the same tables, legends and aggregates the markdown shows, as display
strings (the page escapes them), plus the throughput, quality-vs-throughput and methods tables.

Only measured records reach here: the caller splits published ones off (they get their own section in
:func:`benchmark.leaderboards.site.write_site`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from benchmark.leaderboards.grid import grid, number_rows
from benchmark.leaderboards.model import Board, Table
from benchmark.leaderboards.quality import QUALITY_COLUMNS, THROUGHPUT_COLUMNS
from benchmark.results.record import Record

#: The best cell of a column is marked with this suffix on the page (bold in markdown).
BEST = " ★"


def table_frame(t: Table) -> pd.DataFrame:
    """One board table as display strings: encoder, one column per dataset (short label), the aggregates."""
    head, rows = grid(t, lambda s: s + BEST, lambda s: s)
    return pd.DataFrame(rows, columns=head)


def number_frame(rows: Sequence[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Rows of numbers (throughput, quality vs throughput) as display strings, in ``columns`` order."""
    return pd.DataFrame(number_rows(rows, columns), columns=columns)


def board_sections(board: Board, records: Iterable[Record] = ()) -> list[Any]:
    """Every section of the page for ``board`` (built from measured records) and the methods table when
    ``records`` hold pretraining runs."""
    from benchmark.leaderboards.page import Section
    from benchmark.leaderboards.pageinfo import short_caption

    # the legend the tables share is shown once, above them (pageinfo.how_to_read); each keeps its own part
    sections = [Section(t.title, table_frame(t), caption=short_caption(t, board), modality=t.modality,
                        protocol=t.protocol) for t in board.tables]
    for title, rows, columns, caption in (
            ("Throughput", board.throughput, THROUGHPUT_COLUMNS,
             "Samples per second of the forward pass on synthetic on-device input (timm's method: warm-up "
             "excluded, synchronised rounds, median), with parameters, FLOPs per sample and peak memory."),
            ("Quality vs throughput", board.quality_vs_throughput, QUALITY_COLUMNS,
             "Each encoder's mean score over the datasets every listed encoder has, beside its fastest "
             "measured samples/s.")):
        if rows:
            sections.append(Section(title, number_frame(rows, columns),
                                    caption=caption))
    methods = _methods_section(records)
    if methods is not None:
        sections.append(methods)
    return sections


def _methods_section(records: Iterable[Record]) -> Any:
    from benchmark.leaderboards.methods import NOTE, methods_frame
    from benchmark.leaderboards.page import Section

    records = list(records)
    if not any(isinstance(r.encoder.extra.get("pretraining"), dict) for r in records):
        return None
    frame = methods_frame(records)
    return Section("Pretraining methods", frame, caption=NOTE) if len(frame) else None


def suite_intro(board: Board) -> str:
    """The page's introduction in suite mode: which suite ranks the page and which cells each encoder lacks."""
    if not board.suite:
        return ""
    lines: Sequence[str] = [f"Suite {board.suite['name']} (version {board.suite['version']}), ranked by "
                            f"{board.suite['aggregation']}."]
    lines = [*lines, *(f"{e} lacks {', '.join(cells)}." for e, cells in board.lacking.items())]
    return "\n\n".join(lines)
