"""Peak host memory of extraction, the feature cache and the kNN / linear / retrieval protocols, against the bytes of
the features they work on, at two sizes. Printed as ratios; nothing is timed and no ratio is asserted here (the
bounds are asserted at small sizes in tests/test_memory.py).

Run: ``REPBENCH_BENCH_SCALE=1 pytest tests/benchmarks/test_bench_memory.py -s -p no:cacheprovider`` (or ``tox -e
bench``). Sizes: N = 20,000 and 80,000 rows of D = 512 float32 features scaled by ``REPBENCH_BENCH_SCALE``
(default 0.02: a quick smoke run, marked slow); 2,000 test queries for kNN and retrieval, 100 classes (kNN,
retrieval), 10 and 1,000 classes for the linear probe (5,000 test rows, one C, validation carved from train,
``max_iter=3``: the solver's buffers all exist from the first iteration, so more iterations add time, not memory).
A last point has ImageNet's shape but for N: the linear probe at D = 2048, 1,000 classes, N = 80,000, its train
split written to the feature cache and read back memory-mapped, as the harness reads it.

How the peak is measured, honestly for numpy and torch alike: each point runs in a fresh Python process (so no
earlier point's heap is reused) with one thread (several threads' allocator arenas make the peak noisy); inputs are
built and a tiny call loads every kernel first; then the kernel's peak resident-set counter is reset
(``/proc/self/clear_refs``, Linux) and the point's call runs. ``peak`` is VmHWM minus the resident memory before
the call: every allocation numpy or torch's CPU allocator touched, transient ones included. For the cache read,
the memory-mapped features become resident as file-backed page cache (shared with the OS, reclaimable, no private
copy): that part is printed separately (``mapped``) and ``extra`` = peak - mapped is what a read costs above the
page cache; for extraction, whose output is the features, ``extra`` = peak - the output's bytes.

Columns: ``feat MB`` the bytes of the features the point works on (the train split for the protocols, the
extracted or cached split otherwise), ``peak/feat`` and ``extra/feat``; for kNN and retrieval, which hold one
chunk's score buffer (``DEFAULT_CHUNK_BYTES``, 256 MiB on CPU, fewer rows when the queries are fewer) and no copy
of the gallery (the train split), the peak in score buffers as well.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SCALE = float(os.environ.get("REPBENCH_BENCH_SCALE", "0.02"))
SIZES = (20_000, 80_000)
DIM = 512
QUERIES = 2_000
LINEAR_TEST = 5_000
POINTS = ("extract", "cache", "knn", "linear10", "linear1000", "retrieval")
WIDE = 2048  # ImageNet-shaped last point: D = 2048, 1,000 classes, train split memory-mapped from the cache


def _status(name: str) -> int:
    with open("/proc/self/status") as fh:
        return int(fh.read().split(f"{name}:")[1].split()[0]) * 1024


def _clustered(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % k)
    centres = np.random.default_rng(1234).normal(size=(k, d)).astype(np.float32)
    x = rng.standard_normal((n, d), dtype=np.float32)
    x *= 2.0
    x += centres[y]
    return x, y


class _Rows:
    """An encoder whose batch of sample ids i gives rows sin(i + j): numpy batches, no model."""

    modality, info, fingerprint = "text", {}, "rows"

    def __init__(self, d: int) -> None:
        self.embed_dim = d

    def preprocess(self, samples: Any) -> np.ndarray:
        return np.asarray(samples, np.float32)

    def encode(self, batch: np.ndarray) -> np.ndarray:
        return np.sin(batch[:, None] + np.arange(self.embed_dim, dtype=np.float32))


def _point(kind: str, n: int, d: int, folder: str) -> dict[str, Any]:
    """Build the inputs of one point, warm it up, then measure its call (in this process: run it fresh)."""
    import torch

    torch.set_num_threads(1)
    from benchmark.features import FeatureCache, extract
    from benchmark.features.cache import save_npz
    from benchmark.protocols.linear import evaluate_linear
    from benchmark.protocols.logreg import carve_val
    from benchmark.protocols.neighbors import DEFAULT_CHUNK_BYTES, knn_classify
    from benchmark.protocols.retrieval import retrieve
    from benchmark.testing import ArrayTask

    feat_bytes = n * d * 4
    budget = 0
    call: Any
    if kind == "extract":
        enc, ids = _Rows(d), list(range(n))
        extract(enc, ids[:300], batch_size=256)
        call = lambda: extract(enc, ids, batch_size=256)  # noqa: E731
    elif kind == "cache":
        x, y = _clustered(n, d, 100, 0)
        save_npz(Path(folder) / "k.npz", x, y)
        del x
        cache = FeatureCache(folder)
        call = lambda: cache.get("k", labels=y, embed_dim=d)  # noqa: E731
    elif kind in ("knn", "retrieval"):
        x, y = _clustered(n, d, 100, 0)
        q, qy = _clustered(QUERIES, d, 100, 1)
        rows = max(1, min(QUERIES, DEFAULT_CHUNK_BYTES["cpu"] // (4 * n)))
        budget = rows * n * 4  # the chunk's score buffer, as ChunkedTopk sizes it
        if kind == "knn":
            knn_classify(x[:500], y[:500], q[:10], [20], num_classes=100)
            call = lambda: knn_classify(x, y, q, [20], num_classes=100)  # noqa: E731
        else:
            retrieve(x[:500], y[:500], q[:10], qy[:10])
            call = lambda: retrieve(x, y, q, qy)  # noqa: E731
    else:
        classes = int(kind.removeprefix("linear").removesuffix("-cached"))
        x, y = _clustered(n, d, classes, 0)
        if kind.endswith("-cached"):  # the train split read as the harness reads it: mapped from the cache
            save_npz(Path(folder) / "train.npz", x, y)
            del x
            hit = FeatureCache(folder).get("train", labels=y, embed_dim=d)
            assert hit is not None and isinstance(hit[0], np.memmap)
            x = hit[0]
        task = ArrayTask({"train": (x, y), "test": _clustered(LINEAR_TEST, d, classes, 1)}, num_classes=classes)
        small = ArrayTask({"train": _clustered(max(500, 3 * classes), d, classes, 2),
                           "test": _clustered(100, d, classes, 3)}, num_classes=classes)
        evaluate_linear(small, Cs=(0.1,), max_iter=2)
        carve_val(y, 0.2, 0)  # scikit-learn's splitter imported (a 1,000-class warm-up is too small to stratify)
        call = lambda: evaluate_linear(task, Cs=(0.1,), max_iter=3)  # noqa: E731
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # VmHWM := VmRSS
    before, file_before = _status("VmRSS"), _status("RssFile")
    out = call()
    peak, mapped = _status("VmHWM") - before, max(0, _status("RssFile") - file_before)
    del out
    output = feat_bytes if kind == "extract" else 0  # extraction's output is the features themselves
    return {"kind": kind, "n": n, "d": d, "feat_bytes": feat_bytes, "peak": peak, "mapped": mapped, "output": output,
            "budget": budget}


def _measure(kind: str, n: int, d: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        run = subprocess.run([sys.executable, __file__, kind, str(n), str(d), folder], env=env,
                             capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def _line(r: dict[str, Any]) -> str:
    mb = 2**20
    extra = r["peak"] - r["mapped"] - r["output"]
    return (f"[memory] {r['kind']:<10} N={r['n']:>7} D={r['d']}  feat {r['feat_bytes'] / mb:7.1f} MB  "
            f"peak {r['peak'] / mb:8.1f} MB  mapped {r['mapped'] / mb:7.1f} MB  "
            f"peak/feat {r['peak'] / r['feat_bytes']:5.2f}  extra/feat {extra / r['feat_bytes']:5.2f}"
            + (f"  peak/score buffer {extra / r['budget']:4.2f}"
               if r["budget"] else ""))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
def test_peak_memory_against_the_feature_bytes(capsys):
    sizes = sorted({max(1_000, int(s * SCALE)) for s in SIZES})
    rows = [_measure(kind, n, DIM) for n in sizes for kind in POINTS]
    rows.append(_measure("linear1000-cached", sizes[-1], WIDE))  # ImageNet's D and C, N as this machine allows
    with capsys.disabled():
        print(f"\n[memory] scale={SCALE}: peak resident memory above the inputs, one fresh 1-thread process per "
              "point")
        for r in rows:
            print(_line(r))
    # Linux batches each thread's RSS counter updates (SPLIT_RSS_COUNTING: up to 64 pages before they reach VmRSS /
    # VmHWM), so a point that allocates nearly nothing above its baseline can read a fraction of a MiB below it
    assert all(r["peak"] >= -(1 << 20) for r in rows), [(r["kind"], r["n"], r["peak"]) for r in rows]


if __name__ == "__main__":  # one point, in a fresh process: python test_bench_memory.py KIND N D FOLDER
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    print(json.dumps(_point(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])))
