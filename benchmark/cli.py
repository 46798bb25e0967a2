"""The ``repbench`` command: parses arguments, calls the library, prints tables. No logic of its own.

Errors a user can fix (:class:`~benchmark.errors.RepbenchError`) print as one line and exit 2; anything else is
a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from benchmark import __version__
from benchmark.catalog import load_catalog
from benchmark.errors import ExitCode, OptionError, RepbenchError
from benchmark.leaderboards.cli import add_parsers as add_leaderboard_parsers
from benchmark.runtime import PRECISIONS
from benchmark.storage.writable import check_outputs
from benchmark.throughput.cli import add_parser as add_throughput_parser

#: Set to 1 to see third-party libraries' own progress bars (transformers, huggingface_hub).
LIBRARY_PROGRESS_ENV = "REPBENCH_LIBRARY_PROGRESS"

if TYPE_CHECKING:
    from benchmark.catalog import Catalog
    from benchmark.plan import Plan
    from benchmark.results.record import Record
    from benchmark.runner import RunConfig



def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not 0 <= i < n:
        raise argparse.ArgumentTypeError(f"shard {text!r}: need 0 <= i < n")
    return i, n


def cmd_eval(args: argparse.Namespace) -> int:
    from benchmark.options import parse_list
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig

    if getattr(args, "ray_address", None) and getattr(args, "executor", "local") != "ray":
        raise OptionError("--ray-address is for --executor ray; add --executor ray or drop --ray-address")
    results = _results_dir(args.results)
    check_outputs(results, args.cache_dir, not args.no_cache)
    catalog = load_catalog()
    suite = _eval_suite(args, catalog)
    datasets = list(suite.spec.datasets) if suite else parse_list(args.dataset)
    protocols = list(suite.spec.protocols) if suite else parse_list(args.protocol)
    plan = make_plan(catalog, parse_list(args.encoder), datasets, protocols, shard=args.shard)
    ranks = _join_ranks(args)
    config = RunConfig(results_dir=results, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                       device=args.device, batch_size=args.batch_size, precision=args.precision, seed=args.seed,
                       force=args.force, quiet=args.quiet, workers=args.workers, cell_timeout=args.cell_timeout,
                       distributed=ranks, save_predictions=getattr(args, "save_predictions", False),
                       suites=(suite.tag(),) if suite is not None else ())  # tagged when each record is built
    executor = getattr(args, "executor", "local")
    if executor == "ray" and ranks:
        raise OptionError("--executor ray runs each pair as a Ray task; start it with plain repbench, not under "
                          "torchrun (torchrun shares one pair's extraction across ranks)")
    return evaluate_plan(catalog, plan, config, executor=executor, ray_address=getattr(args, "ray_address", None))


def evaluate_plan(catalog: Catalog, plan: Plan, config: RunConfig, *, executor: str = "local",
                  ray_address: str | None = None) -> int:
    """Run ``plan`` with the ``local`` or ``ray`` executor, print its board (what ``repbench leaderboard``
    prints for these records) and return the exit code: what ``repbench eval`` and ``repbench pretrain --eval``
    do once their plan is made."""
    from benchmark.leaderboards.formats import Source, render
    from benchmark.runner import run_plan

    for note in plan.skip_notes() if _is_main() else ():
        print(note, file=sys.stderr)
    if not plan.pairs:
        i, n = plan.shard
        print(f"shard {i}/{n} has no cells (fewer encoder x dataset pairs than shards); nothing to do",
              file=sys.stderr)
        return ExitCode.OK
    if not plan.cells:
        print("nothing to run: no cell pairs an encoder with a dataset of the same modality", file=sys.stderr)
        return ExitCode.USAGE
    if executor == "ray":
        from benchmark.runner_ray import run_plan_ray

        records = run_plan_ray(catalog, plan, config, address=ray_address)
    else:
        with contextlib.redirect_stdout(sys.stderr):  # what plugins print never lands inside the table on stdout
            records = run_plan(catalog, plan, config)
    if not _is_main():
        return ExitCode.OK  # rank 0 writes the records and prints the table
    text = render("board", "markdown", Source(records))  # what `repbench leaderboard --results` prints
    print(text, end="" if text.endswith("\n") else "\n")
    print(f"\n{len(records)} records in {config.results_dir}/", file=sys.stderr)
    return _exit_for(records)


def _results_dir(value: str | Path) -> Path:
    if Path(value).exists() and not Path(value).is_dir():
        raise OptionError(f"--results {value}: is a file, not a folder; name a folder for the JSON records")
    return Path(value)


def _exit_for(records: list[Record]) -> int:
    """ExitCode.FAILED (saying so) when a cell failed, else ExitCode.OK."""
    failed = [r for r in records if r.status != "ok"]
    if failed:
        print(f"{len(failed)} cell(s) failed; their records hold the error and a rerun retries them.", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def _join_ranks(args: argparse.Namespace) -> bool:
    """Under torchrun (``WORLD_SIZE`` > 1), ``repbench eval`` joins the process group so the ranks share each
    extraction; ``args.device`` becomes this rank's (``cuda:<LOCAL_RANK>`` on CUDA). pretrain's evaluation runs on
    its rank 0 alone and joins nothing."""
    if args.command != "eval" or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    from benchmark.features import best_device
    from benchmark.runtime import distributed

    args.device = distributed.init_from_env(best_device(args.device))
    return distributed.world_size() > 1


def _is_main() -> bool:
    from benchmark.runtime import distributed

    return distributed.is_main()


def _eval_suite(args: argparse.Namespace, catalog):
    """The resolved ``--suite`` of ``repbench eval`` (None without one); a suite fixes the datasets and
    protocols, so giving them too is refused rather than guessed at."""
    if not getattr(args, "suite", None):
        if not args.dataset:
            raise OptionError("repbench eval needs --dataset (or --suite NAME; `repbench list suites` lists them)")
        return None
    if args.dataset or args.protocol:
        given = " and ".join(f for f, v in (("--dataset", args.dataset), ("--protocol", args.protocol)) if v)
        raise OptionError(f"--suite {args.suite} fixes the datasets and protocols; drop {given} (or drop --suite "
                          f"to choose cells yourself)")
    from benchmark.leaderboards.suites import resolve_suite

    return resolve_suite(catalog, args.suite)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from benchmark.features import best_device
    from benchmark.methods.budget import parse_budget
    from benchmark.methods.runs import PretrainRequest, pretrain
    from benchmark.methods.watch import watch_from_flags
    from benchmark.options import parse_list
    from benchmark.runtime import distributed

    budget = parse_budget(args.budget)
    check_outputs(args.results if args.eval else None, args.cache_dir, bool(args.eval) and not args.no_cache,
                   out_folder=args.out)
    catalog = load_catalog()
    request = PretrainRequest(catalog.resolve("methods", args.method), catalog.resolve("encoders", args.backbone),
                              catalog.resolve("datasets", args.dataset), budget, seed=args.seed,
                              batch_size=args.batch_size, train_size=args.train_size)
    protocols = parse_list(args.eval) if args.eval else []
    targets = [args.dataset, *(parse_list(args.eval_datasets) if args.eval_datasets else [])]
    if protocols:  # check every name of the evaluation before hours of training
        for name in targets:
            catalog.resolve("datasets", name)
        for proto in protocols:
            catalog.resolve("protocols", proto)
    device = distributed.init_from_env(best_device(args.device))
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr))
    try:
        folder = pretrain(catalog, request, Path(args.out), device=device, num_workers=args.workers,
                          force=args.force, log=log, watch=watch_from_flags(args.probe_every, args.stop_on_collapse,
                                                                            args.seed, args.probe_size))
    except KeyboardInterrupt:
        print(f"interrupted: the run's last checkpoint is in {request.folder(Path(args.out))}; run the same "
              "command again to resume from it", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if not distributed.leave():  # every rank leaves the group here, not at exit after rank 0's evaluation
        return ExitCode.OK  # rank 0 reports and evaluates alone
    print(f"run folder: {folder}\nencoder: run:{folder}")
    if not protocols:
        return ExitCode.OK
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig

    plan = make_plan(catalog, [f"run:{folder}"], targets, protocols)
    config = RunConfig(results_dir=_results_dir(args.results), cache_dir=args.cache_dir, use_cache=not args.no_cache,
                       device=args.device, batch_size=256, precision=args.precision, seed=args.seed,
                       quiet=args.quiet)
    return evaluate_plan(catalog, plan, config)


def cmd_features(args: argparse.Namespace) -> int:
    from benchmark.features import save_npz
    from benchmark.runner import RunConfig, load_task

    out = Path(args.out)
    if not out.parent.is_dir():
        raise OptionError(f"--out {out}: the folder {out.parent} does not exist; create it first")
    check_outputs(None, args.cache_dir, not args.no_cache, out_file=out)
    catalog = load_catalog()
    enc, dset = catalog.resolve("encoders", args.encoder), catalog.resolve("datasets", args.dataset)
    config = RunConfig(cache_dir=args.cache_dir, use_cache=not args.no_cache, device=args.device,
                       batch_size=args.batch_size, precision=args.precision, quiet=args.quiet,
                       workers=args.workers)
    task = load_task(enc, dset, config)
    if not task.has_split(args.split):
        raise OptionError(f"--split {args.split}: dataset {dset.label!r} has no such split; it has "
                          f"{', '.join(task.dataset.splits)}")
    feats, labels = task.features(args.split)
    save_npz(out, feats, labels)
    print(f"wrote {out}: features {feats.shape} float32, labels {labels.shape} int64")
    return ExitCode.OK


def cmd_profile(args: argparse.Namespace) -> int:
    from benchmark.leaderboards.profile import profile_markdown, profile_parts, profile_table
    from benchmark.options import split_list
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig, run_plan
    from benchmark.storage.atomic import write_text

    results = Path(args.results)
    if results.exists() and not results.is_dir():
        raise OptionError(f"--results {results}: is a file, not a folder; name a folder for the JSON records")
    check_outputs(results, args.cache_dir, not args.no_cache, out_file=args.out)
    catalog = load_catalog()
    encoders = [e for text in args.encoder for e in split_list(text)]
    datasets = [d for text in args.dataset or [] for d in split_list(text)]
    try:
        severities = [int(s) for s in split_list(args.severities)]
    except ValueError:
        raise OptionError(f"--severities {args.severities}: give integers 1-5, e.g. 1,3,5") from None
    parts = profile_parts(catalog, encoders, datasets, severities, depth=not args.no_depth)
    plans = [(part, make_plan(catalog, list(part.encoders), list(part.datasets), list(part.protocols)))
             for part in parts]  # every name resolved before any work
    config = RunConfig(results_dir=results, cache_dir=args.cache_dir, use_cache=not args.no_cache,
                       device=args.device, batch_size=args.batch_size, precision=args.precision, seed=args.seed,
                       force=args.force, quiet=args.quiet, workers=args.workers)
    records = []
    for part, plan in plans:
        if not args.quiet:
            print(f"profile: {part.what} ({len(plan.cells)} cells)", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):  # plugins' prints stay out of the table on stdout
            records += run_plan(catalog, plan, config)
    text = profile_markdown(profile_table(records))
    if args.out:
        write_text(Path(args.out), text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    print(text)
    return _exit_for(records)


def cmd_plugins(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    catalog = load_catalog()
    failed: dict[str, list[str]] = {}
    for err in catalog.errors:
        failed.setdefault(err.plugin, []).append(err.stage)
    rows = []
    for name, info in catalog.plugins.infos.items():
        if (info.builtin and not args.all) or name in failed:
            continue
        what = catalog.registered_by(name)
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in what.items()) or "(nothing registered)"
        rows.append([name, info.distribution or "-", info.version or "-", summary])
    for name, stages in failed.items():
        err = next(e for e in catalog.errors if e.plugin == name)
        rows.append([name, err.distribution or "-", err.version or "-", f"FAILED ({', '.join(stages)})"])
    if not rows:
        print("no third-party plugins installed (built-ins are hidden; use --all)")
    else:
        print(tabulate(rows, headers=["plugin", "distribution", "version", "registered"], tablefmt="github"))
    if failed:
        print(f"{len(failed)} plugin(s) failed to load; the errors above say why", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark.api import listing

    if args.kind:
        listing.kind_of(args.kind)  # an unknown kind fails before the plugins load
    print(listing.render(load_catalog(), args.kind, args.pattern))
    return ExitCode.OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repbench", description="Benchmark representation-learning encoders.")
    parser.add_argument("--version", action="version", version=f"repbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def run_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when available)")
        p.add_argument("--batch-size", type=int, default=256, help="samples per extraction batch (default: 256)")
        p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                       help="autocast precision for extraction on CUDA; features stored as float32 (default: fp32)")
        p.add_argument("--cache-dir", type=Path, default=None,
                       help="feature cache (default: $REPBENCH_CACHE_DIR or ~/.cache/repbench/features)")
        p.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
        p.add_argument("--workers", type=int, default=None,
                       help="extraction loader worker processes (default: a spare core each, up to 8, on CUDA; "
                            "0 on the CPU, where workers would share the model's cores)")
        p.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    p = sub.add_parser("eval", help="evaluate encoders on datasets with protocols; prints a leaderboard")
    p.add_argument("--encoder", "-e", action="append", required=True,
                   help="comma-separated spec strings, e.g. 'pixels,timm/resnet18[pretrained=false]'")
    p.add_argument("--dataset", "-d", action="append", default=None, help="e.g. digits (not with --suite)")
    p.add_argument("--protocol", "-p", action="append", default=None, help="e.g. 'knn,linear' (default: knn,linear)")
    p.add_argument("--results", default="results", help="folder for the JSON records (default: ./results)")
    p.add_argument("--seed", type=int, default=0, help="seed of every protocol's random choices (default: 0)")
    p.add_argument("--force", action="store_true", help="rerun cells that already have a finished record")
    p.add_argument("--cell-timeout", type=float, default=None, metavar="SECONDS",
                   help="stop a cell that runs longer (a hanging encoder or protocol) and record it as failed; "
                        "recorded in its timings (default: no limit)")
    p.add_argument("--save-predictions", action="store_true", help="also write each cell's predictions beside its "
                   "record: a TREC run (retrieval), per-pair scores (sts, pairclass) or per-sample predictions")
    p.add_argument("--shard", type=_shard, default=(0, 1), help="run shard i of n (i/n) of the encoder x dataset pairs; one "
                   "task of a SLURM job array each: --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local: every pair in this process; ray: each (encoder, dataset) pair as a Ray task on a "
                        "Ray cluster, records written here as they arrive (pip install 'repbench[ray]')")
    p.add_argument("--ray-address", default=None,
                   help="with --executor ray: auto (the running cluster) or HOST:PORT of its head (default: "
                        "$RAY_ADDRESS, else a new local Ray instance)")
    p.add_argument("--suite", default=None,
                   help="run every cell of a named suite, e.g. offline-vision-v1 (repbench list suites); replaces "
                        "--dataset and --protocol, and tags the records with the suite")
    run_opts(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("pretrain", help="pretrain a backbone with a method under a budget, then evaluate it")
    p.add_argument("--method", "-m", required=True, help="e.g. simclr, 'byol[tau=0.996]' (repbench list methods)")
    p.add_argument("--backbone", "-b", required=True, help="a trainable encoder, e.g. 'timm/resnet18[pretrained=false]'")
    p.add_argument("--dataset", "-d", required=True, help="trained on its train split (labels unused but by supervised)")
    p.add_argument("--budget", required=True, help="e.g. 3min, 90s, 500steps, 10epochs, or '2epochs,5min'")
    p.add_argument("--eval", default=None, help="protocols to score the result with, e.g. knn,linear (default: none)")
    p.add_argument("--eval-datasets", default=None, help="more datasets to evaluate on (transfer), comma-separated")
    p.add_argument("--out", default="runs", help="folder of run folders (default: ./runs)")
    p.add_argument("--results", default="results", help="folder for the evaluation records (default: ./results)")
    p.add_argument("--train-size", type=int, default=None, help="seeded subsample of the train split (default: all)")
    p.add_argument("--batch-size", type=int, default=None, help="pretraining batch (default: the method's)")
    p.add_argument("--workers", type=int, default=0, help="data-loader worker processes for the views (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run (default: 0)")
    p.add_argument("--force", action="store_true", help="retrain a finished run")
    p.add_argument("--probe-every", type=int, default=None,
                   help="every N steps (and at the end): online kNN/linear probe on a fixed labelled subset of the "
                        "train split, and the collapse monitors (default: off)")
    p.add_argument("--probe-size", type=int, default=None, help="online probe's labelled samples (default: 1000)")
    p.add_argument("--stop-on-collapse", action="store_true",
                   help="end training when RankMe or the std of the normalised embeddings says it collapsed "
                        "(monitors every --probe-every steps, default 50)")
    p.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: cuda when available)")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS), help="evaluation precision (default: fp32)")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache for the evaluation")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("features", help="export features and labels of one split to an .npz file")
    p.add_argument("--encoder", "-e", required=True)
    p.add_argument("--dataset", "-d", required=True)
    p.add_argument("--split", default="test", help="train, test or val (default: test)")
    p.add_argument("--out", required=True, help="output .npz (arrays 'features' float32 and 'labels' int64)")
    run_opts(p)
    p.set_defaults(func=cmd_features)

    p = sub.add_parser("profile", help="an encoder's representation profile: in-domain kNN/linear, label efficiency, "
                                       "clustering, retrieval, domain shift, robustness, depth")
    p.add_argument("--encoder", "-e", action="append", required=True, help="comma-separated spec strings")
    p.add_argument("--dataset", "-d", action="append", default=None,
                   help="in-domain datasets with a shift partner: digits, mnist5k (image), r8 (text) "
                        "(default: digits,mnist5k for image encoders, r8 for text ones)")
    p.add_argument("--severities", default="1,2,3,4,5", help="corruption severities (default: 1,2,3,4,5)")
    p.add_argument("--no-depth", action="store_true", help="skip the per-layer probes (layers=all)")
    p.add_argument("--results", default="results", help="folder for the JSON records (default: ./results)")
    p.add_argument("--out", default=None, help="also write the profile table (markdown) to this file")
    p.add_argument("--seed", type=int, default=0, help="seed of every protocol's random choices (default: 0)")
    p.add_argument("--force", action="store_true", help="rerun cells that already have a finished record")
    run_opts(p)
    p.set_defaults(func=cmd_profile)

    p = sub.add_parser("plugins", help="list installed plugins, their versions and what each registered")
    p.add_argument("--all", action="store_true", help="include the built-in plugins")
    p.set_defaults(func=cmd_plugins)

    add_throughput_parser(sub)
    add_leaderboard_parsers(sub)

    p = sub.add_parser("list", help="list the registered names (of one kind), optionally matching a pattern")
    p.add_argument("kind", nargs="?", default=None,
                   help="encoders, datasets, protocols, methods or suites (singular works too; default: all)")
    p.add_argument("pattern", nargs="?", default=None,
                   help="an fnmatch pattern over names, e.g. 'timm/*resnet*' (families list their variants)")
    p.set_defaults(func=cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "quiet", False) or not os.environ.get(LIBRARY_PROGRESS_ENV):
        # other libraries' own bars (transformers' "Loading weights", the hub's downloads) stay out of
        # repbench's output unless asked for with REPBENCH_LIBRARY_PROGRESS=1; read when transformers is imported
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if args.command == "eval" and args.protocol is None and not args.suite:
        args.protocol = ["knn,linear"]
    try:
        code = args.func(args)
        if "benchmark.runtime.distributed" in sys.modules:  # a torchrun rank ends in step with the others
            sys.modules["benchmark.runtime.distributed"].leave()
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`repbench leaderboard | head`): not an error; silence the flush at exit too
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitCode.OK
    except RepbenchError as exc:
        # user-facing errors carry their own explanation; REPBENCH_DEBUG=1 shows the traceback. Every other
        # exception is a bug (in repbench or a plugin) and keeps its traceback.
        if os.environ.get("REPBENCH_DEBUG"):
            raise
        print(f"repbench: error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except OSError as exc:
        # a file or folder that cannot be written or read (read-only, full disk, a file where a folder should
        # be): one line naming it. Without a file name it is no such thing, and keeps its traceback.
        if exc.filename is None or os.environ.get("REPBENCH_DEBUG"):
            raise
        print(f"repbench: error: {exc.filename}: {exc.strerror or exc}; check the path, its permissions and the "
              "free space", file=sys.stderr)
        return ExitCode.USAGE


if __name__ == "__main__":
    sys.exit(main())
