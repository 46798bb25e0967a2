"""Every table kind and output format as text, in one registry: a new format (or table kind) is one entry of
:data:`FORMATS`, and ``repbench leaderboard --table T --format F`` and ``repbench eval``'s printed board both draw
through :func:`render`.

* ``board``: one table per protocol and modality with ranks, throughput and quality vs throughput
  (:mod:`benchmark.leaderboards.board`, drawn by :mod:`benchmark.leaderboards.render`); its ``csv`` is the long
  form, one row per record (published ones included).
* ``cells``: the single wide encoders x (dataset, protocol) table (:mod:`benchmark.leaderboards.tables`).
* ``methods``: pretraining methods beside reference rows; ``profile``: an encoder's robustness and depth profile.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import OptionError

if TYPE_CHECKING:  # the parsers read FORMATS at startup: nothing here may import torch or pandas
    from benchmark.leaderboards.model import Board
    from benchmark.results.record import Record
    from benchmark.results.throughput import ThroughputRecord


@dataclass
class Source:
    """What a table is drawn from: the measured records (one per cell and seed), every record (published ones
    too, for the long CSV), the measured throughput records, and how to build the board (lazily: only board
    formats need it)."""

    records: Sequence[Record]
    throughput: Sequence[ThroughputRecord] = ()
    everything: Sequence[Record] | None = None
    board_options: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None

    def board(self) -> Board:
        from benchmark.leaderboards.board import build_board

        return build_board(self.records, self.throughput, **self.board_options)


def _board_markdown(src: Source) -> str:
    """The board's tables; imported published numbers (in ``everything``) after them in their own section, as on
    the page."""
    from benchmark.leaderboards.published import split_records
    from benchmark.leaderboards.published_md import with_published
    from benchmark.leaderboards.render import to_markdown

    published = split_records(src.everything)[1] if src.everything is not None else []
    return with_published(to_markdown(src.board()), published, src.records)


def _board_latex(src: Source) -> str:
    from benchmark.leaderboards.render import to_latex

    return to_latex(src.board())


def _board_json(src: Source) -> str:
    from benchmark.leaderboards.render import to_json

    return to_json(src.board())


def _records_csv(src: Source) -> str:
    from benchmark.leaderboards.render import records_csv

    return records_csv(src.everything if src.everything is not None else src.records)


def _cells(fmt: str) -> Callable[[Source], str]:
    def draw(src: Source) -> str:
        from benchmark.leaderboards import tables

        frame = tables.to_frame(src.records)
        return {"markdown": tables.cells_markdown, "csv": tables.to_csv, "html": tables.to_html}[fmt](frame)

    return draw


def _methods(fmt: str) -> Callable[[Source], str]:
    def draw(src: Source) -> str:
        from benchmark.leaderboards.methods import methods_frame, methods_markdown
        from benchmark.leaderboards.safe_text import csv_text

        return methods_markdown(src.records) if fmt == "markdown" else csv_text(methods_frame(src.records))

    return draw


def _profile(fmt: str) -> Callable[[Source], str]:
    def draw(src: Source) -> str:
        from benchmark.leaderboards.profile import profile_markdown, profile_table
        from benchmark.leaderboards.safe_text import csv_text

        table = profile_table(src.records, baseline=src.baseline)
        return profile_markdown(table) if fmt == "markdown" else csv_text(table)

    return draw


#: table kind -> output format -> renderer. The first table kind is the default.
FORMATS: dict[str, dict[str, Callable[[Source], str]]] = {
    "board": {"markdown": _board_markdown, "csv": _records_csv, "latex": _board_latex, "json": _board_json},
    "cells": {"markdown": _cells("markdown"), "csv": _cells("csv"), "html": _cells("html")},
    "methods": {"markdown": _methods("markdown"), "csv": _methods("csv")},
    "profile": {"markdown": _profile("markdown"), "csv": _profile("csv")},
}


def all_formats() -> list[str]:
    """Every format some table kind renders to, in first-seen order (the ``--format`` choices)."""
    return list(dict.fromkeys(fmt for formats in FORMATS.values() for fmt in formats))


def render(table: str, fmt: str, source: Source) -> str:
    """``table`` drawn in ``fmt`` from ``source``; an OptionError says which formats the table has and which
    tables have ``fmt``."""
    formats = FORMATS[table]
    if fmt not in formats:
        others = [t for t, f in FORMATS.items() if fmt in f]
        raise OptionError(f"--table {table} renders as {', '.join(formats)}; --format {fmt} is for "
                          f"--table {' or '.join(others)}")
    return formats[fmt](source)


#: The --format an --out file's suffix asks for.
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "markdown", ".csv": "csv", ".tex": "latex",
                  ".json": "json", ".html": "html", ".htm": "html"}


def format_for(out: Path | None, given: str | None) -> str:
    """--format from the --out file's suffix (lb.csv writes CSV); a suffix that names no format, or one that
    contradicts --format, is refused rather than written in another format."""
    if out is None or not out.suffix:
        return given or "markdown"
    wanted = SUFFIX_FORMATS.get(out.suffix.lower())
    if wanted is None:
        raise OptionError(f"--out {out}: the suffix {out.suffix} names no format; use "
                          f"{', '.join(sorted(SUFFIX_FORMATS))} (or a folder, without a suffix, for the whole board)")
    if given is not None and given != wanted:
        raise OptionError(f"--out {out} is {wanted} by its suffix but --format is {given}; drop one of them")
    return wanted
