"""The landing page of a folder of published leaderboards: ``python -m benchmark.leaderboards.index leaderboards``.

Every subfolder holding ``records/`` is one published board (written by ``repbench leaderboard --out``): the page
gets a section per board, titled as the board's own page is (its suite, or what it measures) and its folder, with
a summary table read from its records (each encoder's mean score per protocol table, or the methods, throughput or
profile table the folder is about), the folder's own description (the first paragraph under its heading in the
folder's README, when there is one) and links to the board's page and tables, each saying what the file is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from benchmark.errors import ExitCode
from benchmark.leaderboards.board import build_board
from benchmark.leaderboards.ingest import load_inputs
from benchmark.leaderboards.model import Board
from benchmark.leaderboards.page import Section, write_page
from benchmark.leaderboards.pageinfo import page_title
from benchmark.leaderboards.published import split_records

TITLE = "repbench: published leaderboards"
#: How the landing page names the files a board folder holds.
LINKS = {"index.html": "the board's page", "leaderboard.md": "tables in markdown", "methods.md": "methods table",
         "profile.md": "property profile", "depth.md": "accuracy by depth", "README.md": "how it was measured"}
INTRO = ("Every number below was measured by repbench from the records in each folder (their `records/`), on the "
         "machine and with the code each record names. Open a board for its per-dataset tables with 95% "
         "confidence intervals, legends, plots and the aggregation that ranks it; click a header to sort.")


def summary(board: Board) -> pd.DataFrame:
    """Each ranked encoder's mean score (percent) in every table of ``board``; "–" where it is not ranked."""
    rows: dict[str, dict[str, str]] = {}
    for t in board.tables:
        for r in t.rows:
            rows.setdefault(r.key, {})[t.title] = "–" if r.mean is None else f"{r.mean:.1f}"
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=[t.title for t in board.tables]).fillna("–")
    frame.index.name = "encoder"
    return frame


def _percent(value: object) -> object:
    return f"{value * 100:.1f}" if isinstance(value, float) and value == value else value


def _description(folder: Path) -> str:
    readme = folder / "README.md"
    if not readme.is_file():
        return ""
    paras = [p.strip() for p in readme.read_text(encoding="utf-8").split("\n\n")]
    return next((p for p in paras if p and not p.startswith(("#", "```", "|"))), "")


def _published_suite(folder: Path) -> dict[str, Any] | None:
    """The suite the folder's rendered board was built for (``leaderboard.json``'s ``suite``), if any."""
    try:
        suite = json.loads((folder / "leaderboard.json").read_text(encoding="utf-8")).get("suite")
    except (OSError, ValueError, AttributeError):
        return None
    return suite if isinstance(suite, dict) and {"name", "version"} <= suite.keys() else None


def board_section(folder: Path) -> Section:
    """One folder's section: summary, description, links to what the folder holds."""
    inputs = load_inputs([folder / "records"])
    measured = split_records(inputs.records)[0]
    board = build_board(measured, split_records(inputs.throughput)[0])
    table = summary(board) if board.tables else None
    if sorted(folder.glob("profile*.md")):
        from benchmark.leaderboards.profile import profile_table

        table = profile_table(measured).set_index(["encoder", "dataset"]).map(_percent)
    elif any(isinstance(r.encoder.extra.get("pretraining"), dict) for r in measured):
        from benchmark.leaderboards.methods import methods_frame

        table = methods_frame(measured).reset_index(drop=True)  # a methods board: by method, not run folder
    elif table is None and board.throughput:
        from benchmark.leaderboards.quality import THROUGHPUT_COLUMNS
        from benchmark.leaderboards.sections import number_frame

        table = number_frame(board.throughput, THROUGHPUT_COLUMNS)
    names = ["index.html", "leaderboard.md", "methods.md", *sorted(p.name for p in folder.glob("profile*.md")),
             "depth.md", "README.md"]
    links = [(f"{LINKS.get(name, name)} ({name})", f"{quote(folder.name)}/{name}") for name in names
             if (folder / name).is_file()]
    caption = _description(folder) or f"{len(measured)} records."
    if board.tables and table is not None and table.index.name == "encoder":
        caption += "\n\nMean score (percent) over each table's datasets, for the encoders ranked there."
    # the board's own page title (its suite, or what it measures), then the folder it lives in
    suite = _published_suite(folder)
    title = f"suite {suite['name']} (version {suite['version']})" if suite else \
        page_title(board, measured, inputs.throughput).removeprefix("repbench: ")
    return Section(f"{title} — {folder.name}/", table, caption=caption, links=links)


def write_index(root: Path | str) -> Path:
    """Write ``root/index.html`` over every board folder under ``root``; returns its path."""
    root = Path(root)
    folders = sorted(p for p in root.iterdir() if (p / "records").is_dir())
    return write_page(root / "index.html", TITLE, [board_section(f) for f in folders], intro=INTRO)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else "leaderboards")
    print(f"wrote {write_index(root)}", file=sys.stderr)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
