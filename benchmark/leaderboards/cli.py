"""``repbench leaderboard``, ``repbench depth`` and ``repbench import``: the subcommands that read records and
render or bring them in. Wired into ``benchmark/cli.py`` with ``add_parsers(sub)``; each subcommand's ``func``
returns the exit status, and a :class:`~benchmark.errors.RepbenchError` is printed by the CLI as one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import OptionError

EXIT_OK = 0


def _catalog():
    from benchmark.cli import _catalog as load

    return load()


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark.atomic import write_text
    from benchmark.leaderboards.ingest import load_inputs, results_paths

    out = Path(args.out) if args.out else None
    args.format = _format_for(out, args.format)
    if out is not None:  # before reading and ranking anything
        from benchmark.writable import check_file, check_folder

        (check_file if out.suffix else check_folder)(out, "--out")
    # every bad file, conflict and merged duplicate is reported by name and reason; nothing bad enters a table
    inputs = load_inputs(results_paths(args.results or ["results"]))
    for line in inputs.messages():
        print(line, file=sys.stderr)
    if out is not None and not out.suffix and args.table == "board":
        from benchmark.leaderboards.published import split_records
        from benchmark.leaderboards.render import write_board

        measured, published = split_records(inputs.records)
        throughput = split_records(inputs.throughput)[0]
        board = _board(args, inputs, measured, throughput)
        title = f"repbench leaderboard: {out.resolve().name}"
        for path in write_board(out, board, measured, throughput, published=published, title=title,
                                log=lambda msg: print(msg, file=sys.stderr)):
            print(f"wrote {path}", file=sys.stderr)
        return EXIT_OK
    if out is not None and not out.suffix:
        raise OptionError(f"--out {out}: a folder takes the whole board (--table board); for --table {args.table} "
                          "name a file with a suffix, e.g. leaderboard.md")
    text = _leaderboard_text(args, inputs)
    if out is not None:
        write_text(out, text if text.endswith("\n") else text + "\n")
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return EXIT_OK


#: The --format an --out file's suffix asks for.
SUFFIX_FORMATS = {".md": "markdown", ".markdown": "markdown", ".txt": "markdown", ".csv": "csv", ".tex": "latex",
                  ".json": "json", ".html": "html", ".htm": "html"}


def _format_for(out: Path | None, given: str | None) -> str:
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


def _board(args: argparse.Namespace, inputs, records=None, throughput=None):
    """The board of the measured records (published ones, from ``repbench import``, never enter it)."""
    from benchmark.leaderboards.board import build_board
    from benchmark.options import split_list

    suite = None
    if args.suite:
        from benchmark.leaderboards.suites import resolve_suite

        suite = resolve_suite(_catalog(), args.suite)
    protocols = [p for text in args.protocol or [] for p in split_list(text)]
    modalities = [m for text in args.modality or [] for m in split_list(text)]
    if records is None:
        from benchmark.leaderboards.published import split_records

        records, throughput = split_records(inputs.records)[0], split_records(inputs.throughput)[0]
    return build_board(records, throughput, protocols=protocols, modalities=modalities,
                       baseline=args.baseline, suite=suite)


def _leaderboard_text(args: argparse.Namespace, inputs) -> str:
    """One format of one table kind, as text; the tables hold measured records only (published ones, from
    ``repbench import``, appear on the page of ``--out DIR`` in their own section; the long CSV keeps them)."""
    from benchmark import leaderboards as leaderboard
    from benchmark.leaderboards.published import split_records

    measured = split_records(inputs.records)[0]

    if args.table != "board" and (args.suite or args.protocol or args.modality
                                  or (args.baseline and args.table != "profile")):
        raise OptionError(f"--suite, --protocol, --modality and --baseline shape the board (--baseline also the "
                          f"profile's mCE); drop them for --table {args.table}")
    if args.table == "profile":
        from benchmark.profile import profile_markdown, profile_table

        if args.format not in ("markdown", "csv"):
            raise OptionError("--table profile renders as markdown or csv; use --format markdown or csv")
        table = profile_table(measured, baseline=args.baseline)
        return profile_markdown(table) if args.format == "markdown" else table.to_csv(index=False)
    if args.table == "methods":
        from benchmark.leaderboards.methods import methods_frame, methods_markdown

        if args.format not in ("markdown", "csv"):
            raise OptionError("--table methods renders as markdown or csv; use --format markdown or csv")
        return methods_markdown(measured) if args.format == "markdown" else \
            methods_frame(measured).to_csv(index=False)
    if args.table == "cells":
        if args.format not in ("markdown", "csv", "html"):
            raise OptionError("--table cells renders as markdown, csv or html; use --table board for latex or json")
        df = leaderboard.to_frame(measured)
        return {"markdown": leaderboard.to_markdown, "csv": leaderboard.to_csv, "html": leaderboard.to_html}[
            args.format](df)
    from benchmark.leaderboards.render import FORMATS, records_csv

    if args.format == "html":
        raise OptionError("--format html renders --table cells; the board renders as markdown, csv, latex or json")
    if args.format == "csv":
        return records_csv(inputs.records)
    text = FORMATS[args.format](_board(args, inputs))
    if args.format == "markdown":  # imported published numbers in their own section, as on the page
        from benchmark.leaderboards.published_md import with_published

        text = with_published(text, split_records(inputs.records)[1])
    return text


def cmd_depth(args: argparse.Namespace) -> int:
    from benchmark.atomic import write_text
    from benchmark.leaderboards.depth import depth_frame, depth_markdown, plot_depth
    from benchmark.results import scan_records

    scan = scan_records(*args.results)  # every bad file is reported by name and reason, and skipped
    for line in scan.messages():
        print(line, file=sys.stderr)
    df = depth_frame(scan.records)
    text = depth_markdown(df) if args.format == "markdown" else df.to_csv(index=False)
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
    return EXIT_OK


def cmd_import(args: argparse.Namespace) -> int:
    from benchmark.leaderboards.importers import expand, import_file
    from benchmark.results.store import ResultStore
    from benchmark.results.throughput import ThroughputRecord, write_throughput

    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise OptionError(f"--results {results}: is a file, not a folder; name a folder for the JSON records")
    from benchmark.writable import check_folder

    check_folder(results, "--results")
    # read every file first: a bad one stops the import before anything is written
    imported = [(path, import_file(path, fmt=args.format, model=args.model, url=args.url, dataset=args.dataset))
                for path in expand(args.files)]
    store = ResultStore(results)
    for path, records in imported:
        throughput = [r for r in records if isinstance(r, ThroughputRecord)]
        for r in records:
            write_throughput(results, r) if isinstance(r, ThroughputRecord) else store.write(r)
        what = f"{len(throughput)} throughput record(s)" if throughput else f"{len(records)} record(s)"
        print(f"{path}: {what} marked published, written to {results}", file=sys.stderr)
    return EXIT_OK


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add the leaderboard, depth and import subcommands to ``sub``."""
    p = sub.add_parser("leaderboard", help="render result records as tables")
    p.add_argument("--results", nargs="+", action="extend", default=None,
                   help="folders or files of records; repeat it or give a comma list to merge folders "
                        "(default: ./results)")
    p.add_argument("--format", choices=["markdown", "csv", "html", "latex", "json"], default=None,
                   help="markdown (tabulate), csv (long form: one row per record, every field), latex (booktabs), "
                        "json, or html (--table cells only) (default: the --out file's suffix, else markdown)")
    p.add_argument("--table", choices=["board", "cells", "methods", "profile"], default="board",
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
