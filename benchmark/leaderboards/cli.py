"""``repbench leaderboard``, ``repbench depth`` and ``repbench import``: the subcommands that read records and
render or bring them in. Wired into ``benchmark/cli.py`` with ``add_parsers(sub)``; each subcommand's ``func``
returns the exit status, and a :class:`~benchmark.errors.RepbenchError` is printed by the CLI as one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.catalog import load_catalog
from benchmark.errors import ExitCode, OptionError
from benchmark.leaderboards.formats import FORMATS, Source, all_formats, format_for, render

if TYPE_CHECKING:
    from benchmark.leaderboards.ingest import Inputs
    from benchmark.results.record import Record
    from benchmark.results.throughput import ThroughputRecord


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark.leaderboards.ingest import load_inputs, results_paths
    from benchmark.storage.atomic import write_text

    out = Path(args.out) if args.out else None
    args.format = format_for(out, args.format)
    if out is not None:  # before reading and ranking anything
        from benchmark.storage.writable import check_file, check_folder

        (check_file if out.suffix else check_folder)(out, "--out")
    # every bad file, conflict and merged duplicate is reported by name and reason; nothing bad enters a table
    inputs = load_inputs(results_paths(args.results or ["results"]))
    for line in inputs.messages():
        print(line, file=sys.stderr)
    if out is not None and not out.suffix and args.table == "board":
        from benchmark.leaderboards.published import split_records
        from benchmark.leaderboards.render import write_board

        source = _source(args, inputs)
        measured, throughput, published = source.records, source.throughput, split_records(inputs.records)[1]
        board = source.board()
        for path in write_board(out, board, measured, throughput, published=published,
                                log=lambda msg: print(msg, file=sys.stderr)):
            print(f"wrote {path}", file=sys.stderr)
        return ExitCode.OK
    if out is not None and not out.suffix:
        raise OptionError(f"--out {out}: a folder takes the whole board (--table board); for --table {args.table} "
                          "name a file with a suffix, e.g. leaderboard.md")
    text = _leaderboard_text(args, inputs)
    if out is not None:
        write_text(out, text if text.endswith("\n") else text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return ExitCode.OK


def _source(args: argparse.Namespace, inputs: Inputs) -> Source:
    """What the tables are drawn from: the measured records and throughput (published ones, from
    ``repbench import``, never enter a table; the long CSV and the markdown board's own section keep them) and
    the board's shape options."""
    from benchmark.leaderboards.published import split_records
    from benchmark.options import split_list

    suite = None
    if args.suite:
        from benchmark.leaderboards.suites import resolve_suite

        suite = resolve_suite(load_catalog(), args.suite)
    protocols = [p for text in args.protocol or [] for p in split_list(text)]
    modalities = [m for text in args.modality or [] for m in split_list(text)]
    measured = split_records(inputs.records)[0]
    shown = modalities or (sorted({m for m, _, _ in suite.cells}) if suite is not None else [])
    return Source(measured, board_throughput(measured, split_records(inputs.throughput)[0], shown),
                  everything=inputs.records,
                  board_options={"protocols": protocols, "modalities": modalities, "baseline": args.baseline,
                                 "suite": suite}, baseline=args.baseline)


def board_throughput(records: Sequence[Record], throughput: Sequence[ThroughputRecord],
                     modalities: Sequence[str] = ()) -> list[ThroughputRecord]:
    """The throughput records of the board's own encoders (those with an evaluation record, of ``modalities``
    when given): throughput files are read per results folder, and one folder may time encoders of several boards.
    With no evaluation records (a throughput board) every one."""
    if not records:
        return list(throughput)
    mine = {r.encoder.display for r in records if not modalities or r.dataset.modality in modalities}
    return [t for t in throughput if t.label in mine]


def _leaderboard_text(args: argparse.Namespace, inputs: Inputs) -> str:
    """One format of one table kind, as text (:data:`benchmark.leaderboards.formats.FORMATS`)."""
    if args.table != "board" and (args.suite or args.protocol or args.modality
                                  or (args.baseline and args.table != "profile")):
        raise OptionError(f"--suite, --protocol, --modality and --baseline shape the board (--baseline also the "
                          f"profile's mCE); drop them for --table {args.table}")
    return render(args.table, args.format, _source(args, inputs))


def cmd_depth(args: argparse.Namespace) -> int:
    from benchmark.leaderboards.depth import depth_frame, depth_markdown, plot_depth
    from benchmark.leaderboards.safe_text import csv_text
    from benchmark.results import scan_records
    from benchmark.storage.atomic import write_text

    scan = scan_records(*args.results)  # every bad file is reported by name and reason, and skipped
    for line in scan.messages():
        print(line, file=sys.stderr)
    df = depth_frame(scan.records)
    text = depth_markdown(df) if args.format == "markdown" else csv_text(df)
    if args.out:
        write_text(Path(args.out), text if text.endswith("\n") else text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    if args.plot:
        if df.empty or not (df["status"] == "ok").any():
            raise OptionError(f"--plot {args.plot}: no finished records of layer encoders in {' '.join(args.results)}; "
                              "evaluate e.g. 'timm/resnet18[layers=all]' first")
        for path in plot_depth(df, Path(args.plot)):
            print(f"wrote {path}", file=sys.stderr)
    return ExitCode.OK


def cmd_import(args: argparse.Namespace) -> int:
    from benchmark.leaderboards.importers import check_conflicts, expand, import_file
    from benchmark.results.store import ResultStore
    from benchmark.results.throughput import ThroughputRecord, write_throughput

    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise OptionError(f"--results {results}: is a file, not a folder; name a folder for the JSON records")
    from benchmark.storage.writable import check_folder

    check_folder(results, "--results")
    # read every file first: a bad one stops the import before anything is written
    imported = [(path, import_file(path, fmt=args.format, model=args.model, url=args.url, dataset=args.dataset))
                for path in expand(args.files)]
    check_conflicts(imported)  # two records for one file: report, never keep the last silently
    store = ResultStore(results)
    for path, records in imported:
        throughput = [r for r in records if isinstance(r, ThroughputRecord)]
        for r in records:
            write_throughput(results, r) if isinstance(r, ThroughputRecord) else store.write(r)
        what = f"{len(throughput)} throughput record(s)" if throughput else f"{len(records)} record(s)"
        print(f"{path}: {what} marked published, written to {results}", file=sys.stderr)
    return ExitCode.OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the leaderboard, depth and import subcommands to ``sub``."""
    p = sub.add_parser("leaderboard", help="render result records as tables")
    p.add_argument("--results", nargs="+", action="extend", default=None,
                   help="folders or files of records; repeat it or give a comma list to merge folders "
                        "(default: ./results)")
    p.add_argument("--format", choices=all_formats(), default=None,
                   help="markdown (tabulate), csv (long form: one row per record, every field), latex (booktabs), "
                        "json, or html (--table cells only) (default: the --out file's suffix, else markdown)")
    p.add_argument("--table", choices=list(FORMATS), default="board",
                   help="board: one table per protocol and modality with ranks, throughput and quality vs "
                        "throughput; cells: the single wide encoders x (dataset, protocol) table; methods: "
                        "pretraining methods with their budget, time and memory beside reference rows; "
                        "profile: the representation profiles of repbench profile records (default: board)")
    p.add_argument("--suite", default=None, help="rank only over this suite's cells, e.g. offline-vision-v1")
    p.add_argument("--protocol", action="append", default=None, help="only these protocols (comma list)")
    p.add_argument("--modality", action="append", default=None, help="only these modalities: image, text")
    p.add_argument("--baseline", default=None,
                   help="an encoder (label or name, e.g. pixels) whose scores are the floor of the normalised "
                        "score (default: chance, 1/classes)")
    p.add_argument("--out", default=None,
                   help="a folder (a path without a suffix): write every table and format into it; a file "
                        "(with a suffix such as .md): write --format into it; default: stdout")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("depth", help="depth profile: probe accuracy against relative depth of layer encoders "
                                     "(evaluated with layer=i or layers=all), as a table and a plot")
    p.add_argument("--results", nargs="+", default=["results"], help="folders or files of records")
    p.add_argument("--format", choices=["markdown", "csv"], default="markdown",
                   help="markdown table (a row per encoder, dataset and layer) or CSV (a row per record)")
    p.add_argument("--out", default=None, help="write the table to this file instead of stdout")
    p.add_argument("--plot", default=None, help="also draw the profile to PLOT.png and PLOT.svg")
    p.set_defaults(func=cmd_depth)

    p = sub.add_parser("import", help="read results published by others (MTEB JSON, timm CSVs) into records "
                                      "marked published")
    p.add_argument("files", nargs="+", help="MTEB TaskResult .json, timm results-<dataset>.csv or "
                                            "benchmark-infer-*.csv files, or folders of them")
    p.add_argument("--results", default="results", help="folder for the records (default: ./results)")
    p.add_argument("--url", default=None, help="where the files were published (kept in each record's provenance)")
    p.add_argument("--format", choices=["mteb", "timm-results", "timm-benchmark"], default=None,
                   help="the files' format (default: from the file name)")
    p.add_argument("--model", default=None, help="MTEB: the model's name, when the file's folder does not say")
    p.add_argument("--dataset", default=None, help="timm results: the dataset, when the file name does not say")
    p.set_defaults(func=cmd_import)
