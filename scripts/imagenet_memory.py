"""The simulated ImageNet-size run of the README's memory section: synthetic 2048-wide features of N train rows
(default 320,000, the largest this 24 GiB shared machine holds comfortably; ImageNet-1k has 1,281,167), streamed
through the real harness path (extraction into a preallocated output, the feature cache's npz written, then
reopened memory-mapped), then the linear probe (1,000 classes) and kNN read that mapped entry. Each step runs in a
fresh one-thread process; its peak resident memory above the process's baseline is printed, split into the part
that is file-backed page cache of the mapped entry (shared, reclaimable) and the private rest, as multiples of the
feature bytes F = 4 N D.

    python scripts/imagenet_memory.py [--n 320000] [--dim 2048] [--classes 1000] [--folder DIR]

Not part of the test suite (it writes N x D x 4 bytes to disk and takes minutes); tests/benchmarks/
test_bench_memory.py is the routine measurement at smaller sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEST_ROWS = 10_000
QUERIES = 2_000


def _status(name: str) -> int:
    with open("/proc/self/status") as fh:
        return int(fh.read().split(f"{name}:")[1].split()[0]) * 1024


class Synthetic:
    """An encoder over sample ids: row i is its class centre (class i % classes) plus seeded noise, as numpy."""

    modality, info = "text", {}

    def __init__(self, dim: int, classes: int) -> None:
        self.embed_dim, self.classes = dim, classes
        self.fingerprint = f"synthetic-{dim}-{classes}"
        self.centres = np.random.default_rng(1234).normal(size=(classes, dim)).astype(np.float32)

    def preprocess(self, samples: Any) -> np.ndarray:
        return np.asarray(samples, np.int64)

    def encode(self, ids: np.ndarray) -> np.ndarray:
        noise = np.random.default_rng(int(ids[0])).standard_normal((len(ids), self.embed_dim), dtype=np.float32)
        noise *= 4.0
        noise += self.centres[ids % self.classes]
        return noise


def _task(n: int, dim: int, classes: int, folder: str) -> Any:
    from benchmark.datasets.base import InMemoryDataset
    from benchmark.features import FeatureCache
    from benchmark.features.task import HarnessTask
    from benchmark.specs import Split

    def build() -> dict[str, Split]:
        test_ids = np.arange(n, n + TEST_ROWS)
        return {"train": Split(list(range(n)), np.arange(n) % classes),
                "test": Split(test_ids.tolist(), test_ids % classes)}

    dataset = InMemoryDataset("synthetic", "text", [str(c) for c in range(classes)], build)
    return HarnessTask(Synthetic(dim, classes), "synthetic", dataset, device="cpu", cache=FeatureCache(folder),
                       quiet=True, batch_size=4096)


def step(kind: str, n: int, dim: int, classes: int, folder: str) -> dict[str, Any]:
    """One measured step, in this (fresh) process."""
    import torch

    torch.set_num_threads(1)
    from benchmark.protocols.linear import evaluate_linear
    from benchmark.protocols.logreg import carve_val
    from benchmark.protocols.neighbors import knn_classify

    task = _task(n, dim, classes, folder)
    carve_val(np.arange(3000) % 10, 0.2, 0)  # scikit-learn's splitter imported before the measurement
    if kind == "extract":
        call = lambda: task.features("train")  # noqa: E731
    else:
        task.features("train"), task.features("test")  # mapped from the entry the extract step wrote
        assert task.cached["train"] and task.cached["test"], "run the extract step first"
        if kind == "linear":
            call = lambda: evaluate_linear(task, C=0.1, max_iter=1)  # noqa: E731
        else:
            x, y = task.features("train")
            q = np.asarray(task.features("test")[0][:QUERIES])
            call = lambda: knn_classify(x, y, q, [20], num_classes=classes)  # noqa: E731
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before, file_before, anon_before = _status("VmRSS"), _status("RssFile"), _status("RssAnon")
    start = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - start
    peak = _status("VmHWM") - before
    mapped = max(0, _status("RssFile") - file_before)
    anon_after = _status("RssAnon") - anon_before
    del out
    if kind == "extract":
        task.features("test")  # written for the later steps, not measured
    return {"kind": kind, "n": n, "dim": dim, "classes": classes, "feat_bytes": 4 * n * dim, "peak": peak,
            "mapped": mapped, "anon_after": anon_after, "seconds": seconds, "file_before": file_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=320_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--folder", default=None, help="cache folder (default: a temporary one, removed)")
    parser.add_argument("--step", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        print(json.dumps(step(args.step, args.n, args.dim, args.classes, args.folder)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.folder or tmp
        gib = 2**30
        print(f"N = {args.n:,} x D = {args.dim}, {args.classes} classes: F = {4 * args.n * args.dim / gib:.2f} GiB")
        for kind in ("extract", "linear", "knn"):
            run = subprocess.run([sys.executable, __file__, "--step", kind, "--n", str(args.n), "--dim",
                                  str(args.dim), "--classes", str(args.classes), "--folder", folder], env=env,
                                 capture_output=True, text=True)
            if run.returncode:
                sys.exit(run.stderr[-3000:])
            r = json.loads(run.stdout.strip().splitlines()[-1])
            f = r["feat_bytes"]
            private = r["peak"] - r["mapped"]
            print(f"{kind:<8} peak {r['peak'] / gib:6.2f} GiB = {r['peak'] / f:4.2f} F  (mapped page cache "
                  f"{r['mapped'] / gib:5.2f} GiB = {r['mapped'] / f:4.2f} F, private {private / gib:6.2f} GiB = "
                  f"{private / f:4.2f} F; already resident file pages {r['file_before'] / gib:5.2f} GiB)  "
                  f"{r['seconds']:.0f} s")


if __name__ == "__main__":
    main()
