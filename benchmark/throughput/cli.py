"""``repbench throughput``: the subcommand's arguments, its run, and the table it prints.

Wired into ``benchmark/cli.py`` with ``add_parser(sub)`` (``sub`` being the parser's subparsers); the
subcommand sets ``func=run_command``, which returns the exit status: 0 when every cell was measured (an
out-of-memory batch size is a measurement too), 1 when a cell failed or an encoder's worker crashed. An encoder
that cannot be measured for a reason the user can fix (no ``example_batch``, unavailable weights) raises that
:class:`~benchmark.errors.RepbenchError` after the others ran, which the CLI prints as one line (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark import errors
from benchmark.errors import ExitCode, OptionError, RepbenchError
from benchmark.runtime import PRECISIONS

HEADERS = ["encoder", "device", "precision", "input", "batch", "status", "samples/s (min-max)", "ms/batch",
           "tokens/s", "peak mem MiB", "params M", "GMACs/sample", "GFLOPs/sample", "TFLOP/s", "% spec peak",
           "% matmul peak"]
#: Rounds whose fastest is more than this many times the slowest get a warning under the table.
WIDE_SPREAD = 1.5


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,32,256, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _precisions(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in PRECISIONS]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"unknown precision(s) {bad or text!r}; use some of {','.join(PRECISIONS)}")
    return values


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``throughput`` subcommand to ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "throughput", help="time encoders' forward passes on synthetic input: samples/s, memory, FLOPs",
        description="Inference throughput of encoders on synthetic input built by each encoder, each encoder in "
                    "a fresh worker process; warm-up excluded, device-synchronised rounds, median and spread.")
    p.add_argument("--encoder", "-e", action="append", required=True, help="comma-separated spec strings")
    p.add_argument("--batch-size", type=_ints, default=[1, 32, 256], help="comma-separated (default: 1,32,256)")
    p.add_argument("--precision", type=_precisions, default=["fp32"],
                   help=f"comma-separated, of {','.join(PRECISIONS)}; bf16/fp16 autocast (also on CPU) "
                        "(default: fp32)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (4-D inputs)")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass (compiles in warm-up)")
    p.add_argument("--seq-len", type=int, default=None, help="tokens per text sample (default: the encoder's, "
                                                              "128 for hf/ encoders)")
    p.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when available)")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds (default: 5)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (default: 3)")
    p.add_argument("--steps-per-round", type=int, default=None,
                   help="forward passes per round (default: enough for a round of ~0.2 s)")
    p.add_argument("--results", default="results", help="folder for the JSON records (default: ./results)")
    p.add_argument("--no-matmul-peak", action="store_true", help="skip measuring the device's matmul peak")
    p.add_argument("--in-process", action="store_true",
                   help="measure in this process instead of a fresh worker per encoder (debugging)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=run_command)
    return p


def _fmt(value: Any, scale: float = 1.0, digits: int = 1, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.{digits}f}%" if pct else f"{value / scale:,.{digits}f}"


def _fraction(value: Any) -> str:
    """A fraction of a peak; above 1 it cannot be true (a peak undercut on a busy device): withheld."""
    return "-" if value is None or value > 1.0 else _fmt(value, pct=True)


def input_size(record: Any) -> str:
    """What one sample was: ``224 px`` for an image batch (N, C, H, W), ``seq 128`` for tokens, else ``-``."""
    if record.seq_len is not None:
        return f"seq {record.seq_len}"
    shape = (record.extra.get("input_shapes") or {}).get("x")
    if isinstance(shape, list) and len(shape) == 4:
        h, w = shape[2], shape[3]
        return f"{h} px" if h == w else f"{h}x{w} px"
    return "-"


def table(records: Sequence[Any]) -> str:
    """The GitHub-format table of throughput records (one row per record)."""
    from tabulate import tabulate

    rows = []
    for r in records:
        m = r.metrics
        rate = "-" if r.status != "ok" else (f"{m['samples_per_s']:,.1f} ({m['samples_per_s_min']:,.1f}-"
                                             f"{m['samples_per_s_max']:,.1f})")
        flops = m.get("flops_per_sample")
        rows.append([r.label, r.device_name if r.device == "cpu" else f"{r.device} {r.device_name}",
                     r.precision_ran, input_size(r), r.batch_size, r.status, rate,
                     _fmt(m.get("ms_per_batch"), digits=2), _fmt(m.get("tokens_per_s"), digits=0),
                     _fmt(m.get("peak_memory_bytes"), 2**20, 0), _fmt(m.get("params"), 1e6, 2),
                     _fmt(flops / 2 if flops is not None else None, 1e9, 3), _fmt(flops, 1e9, 3),
                     _fmt(m.get("achieved_flops_per_s"), 1e12, 3), _fraction(m.get("fraction_of_peak")),
                     _fraction(m.get("fraction_of_measured_peak"))])
    return tabulate(rows, headers=HEADERS, tablefmt="github")


def spread_warnings(records: Sequence[Any]) -> list[str]:
    """A line per measurement whose rounds spread widely (fastest > :data:`WIDE_SPREAD` x slowest): its median
    is not to be trusted to more than that."""
    out = []
    for r in records:
        lo, hi = r.metrics.get("samples_per_s_min"), r.metrics.get("samples_per_s_max")
        if r.status == "ok" and lo and hi and hi > WIDE_SPREAD * lo:
            out.append(f"warning: {r.label} batch {r.batch_size} {r.precision_ran}: rounds ranged {lo:,.1f}-"
                       f"{hi:,.1f} samples/s ({hi / lo:.1f}x): the device was busy; rerun on an idle one or with "
                       "more --rounds")
    return out


def _user_error(failure: Any) -> type[RepbenchError] | None:
    """The RepbenchError kind of a failure the user can fix (named by type in the worker's output), else None."""
    kind = getattr(errors, failure.type, None)
    return kind if isinstance(kind, type) and issubclass(kind, RepbenchError) else None


def _report_failures(failures: Sequence[Any]) -> None:
    """Print the failures that are crashes or bugs (with their traceback); raise the first user-fixable
    failure's kind with the messages of all of them."""
    fixable = [f for f in failures if _user_error(f) is not None]
    for f in failures:
        if f not in fixable:
            print(f"encoder {f.label!r} was not measured: {f.type}: {f.message}\n{f.traceback}".rstrip(),
                  file=sys.stderr)
    if fixable:
        kind = _user_error(fixable[0]) or RepbenchError
        raise kind("; ".join(f.message for f in fixable))


def run_command(args: argparse.Namespace) -> int:
    """Run ``repbench throughput`` from parsed arguments; print the table; return the exit status."""
    from benchmark.catalog import Catalog
    from benchmark.options import parse_list
    from benchmark.runtime.devices import best_device
    from benchmark.throughput.measure import ThroughputSettings
    from benchmark.throughput.run import run_throughput

    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise OptionError(f"--results {results}: is a file, not a folder; name a folder for the JSON records")
    from benchmark.storage.writable import check_folder

    check_folder(results, "--results")  # before any model is loaded or timed
    settings = ThroughputSettings(batch_sizes=tuple(args.batch_size), precisions=tuple(args.precision),
                        device=best_device(args.device), channels_last=args.channels_last, compile=args.compile,
                        seq_len=args.seq_len, rounds=args.rounds, warmup=args.warmup,
                        steps_per_round=args.steps_per_round, matmul_peak=not args.no_matmul_peak)
    catalog = Catalog.load()
    for err in catalog.errors:
        print(err.message(), file=sys.stderr)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    run = run_throughput(catalog, parse_list(args.encoder), settings, results_dir=results,
                         isolate=not args.in_process, log=log)
    if run.records:
        print(table(run.records))
        for line in spread_warnings(run.records):
            print(line, file=sys.stderr)
        print(f"\n{len(run.records)} throughput records in {results}/", file=sys.stderr)
    _report_failures(run.failures)
    failed = bool(run.failures) or any(r.status == "error" for r in run.records)
    return ExitCode.FAILED if failed else ExitCode.OK
