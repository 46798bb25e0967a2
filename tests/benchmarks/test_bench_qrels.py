"""Retrieval over qrels (``qrels-retrieval``'s exact chunked top-100) against faiss ``IndexFlatIP``, and its peak
memory, measured in one run.

Run: ``pytest tests/benchmarks/test_bench_qrels.py --benchmark-enable -s``. Sizes scale with
``REPBENCH_BENCH_SCALE`` (default 0.02); the target (``REPBENCH_BENCH_SCALE=1``) is a 100,000-document corpus,
10,000 queries, width 384, top 100. Threads: ``REPBENCH_BENCH_THREADS`` (default: every core) for both sides.

* speed: our search (:func:`benchmark.protocols.qrels.search`, exact ties, documented tie-break) and faiss's flat
  inner-product search on the same L2-normalised float32 embeddings; the ratio ``faiss_s / ours_s`` is stored
  in ``extra_info`` (> 1: we are faster). The top-100 lists agree (up to ties) on >= 99.9% of the entries.
* memory: the search and the scoring run in a fresh spawned process that builds the embeddings itself; its peak
  RSS (``ru_maxrss``: interpreter, torch, the embeddings and the search) is stored as ``peak_rss_mb`` and must
  stay under 2 GB at the target size.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import time

import numpy as np
import pytest

SCALE = float(os.environ.get("REPBENCH_BENCH_SCALE", "0.02"))
THREADS = int(os.environ.get("REPBENCH_BENCH_THREADS", "0") or 0) or os.cpu_count() or 1
DIM, DEPTH = 384, 100
N_DOCS, N_QUERIES = max(2_000, int(100_000 * SCALE)), max(200, int(10_000 * SCALE))
PEAK_LIMIT_MB = 2048


def _embeddings() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((N_DOCS, DIM), dtype=np.float32)
    queries = corpus[rng.integers(0, N_DOCS, N_QUERIES)] + rng.standard_normal((N_QUERIES, DIM), dtype=np.float32)
    return queries, corpus


def _ours(queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    from benchmark.protocols.qrels import search

    idx = np.zeros((len(queries), DEPTH), np.int64)
    for start, rows, _ in search(queries, corpus, DEPTH, np.arange(len(corpus))):
        idx[start:start + len(rows)] = rows
    return idx


def _child(out: mp.Queue) -> None:  # type: ignore[type-arg]
    import torch

    torch.set_num_threads(THREADS)
    queries, corpus = _embeddings()
    start = time.perf_counter()
    idx = _ours(queries, corpus)
    out.put((time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, idx[:, 0]))


def test_bench_qrels_search_vs_faiss_and_peak_memory(benchmark):
    faiss = pytest.importorskip("faiss", reason="pip install faiss-cpu (the bench extra) for the faiss ratio")
    import torch

    torch.set_num_threads(THREADS)
    faiss.omp_set_num_threads(THREADS)
    queries, corpus = _embeddings()
    box: dict[str, object] = {}

    def run() -> np.ndarray:
        start = time.perf_counter()
        box["idx"] = _ours(queries, corpus)
        box["s"] = time.perf_counter() - start
        return box["idx"]  # type: ignore[return-value]

    benchmark.pedantic(run, rounds=1, iterations=1)
    ours, ours_s = box["idx"], float(box["s"])  # type: ignore[arg-type]
    start = time.perf_counter()
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    c = corpus / np.linalg.norm(corpus, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(DIM)
    index.add(c)
    _, ref = index.search(q, DEPTH)
    faiss_s = time.perf_counter() - start
    agree = float(np.mean(np.sort(ours, 1) == np.sort(ref, 1)))
    assert agree >= 0.999, f"only {agree:.4%} of the top-{DEPTH} entries agree with faiss"

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    child_s, peak_mb, first = queue.get(timeout=3600)
    proc.join()
    np.testing.assert_array_equal(first, ours[:, 0])  # the child searched the same embeddings
    benchmark.extra_info.update({"ours_s": round(ours_s, 3), "faiss_s": round(faiss_s, 3),
                                 "ratio_faiss_over_ours": round(faiss_s / ours_s, 3), "peak_rss_mb": round(peak_mb),
                                 "docs": N_DOCS, "queries": N_QUERIES, "dim": DIM, "threads": THREADS,
                                 "scale": SCALE})
    print(f"\n[qrels search] {N_DOCS} docs x {N_QUERIES} queries x {DIM}, threads={THREADS}: ours={ours_s:.2f}s "
          f"faiss={faiss_s:.2f}s ratio={faiss_s / ours_s:.2f}x; child peak RSS {peak_mb:.0f} MB ({child_s:.2f}s)")
    assert peak_mb < PEAK_LIMIT_MB, f"peak RSS {peak_mb:.0f} MB over {PEAK_LIMIT_MB} MB"
