"""Peak memory of extraction, the feature cache and the linear probe, against the bytes of the features.

numpy reports its allocations to :mod:`tracemalloc`, so the peak traced inside a call is the extra host memory it
took (torch's own allocations are not traced: the encoders here return numpy arrays). The figures at real sizes,
in fresh processes, are in tests/benchmarks/test_bench_memory.py.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark.features import extract

N, D = 20_000, 64
FEATURE_BYTES = N * D * 4


def traced_peak(fn: Callable[[], Any]) -> tuple[Any, int]:
    """(``fn()``, the peak bytes numpy and Python allocated during the call above what was held before)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        out = fn()
        return out, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


class RowEncoder:
    """Feature row i is (i, i + 1, ..., i + D - 1) / N: known values, numpy batches (traced by tracemalloc)."""

    modality = "text"
    embed_dim = D
    info: dict = {}
    fingerprint = "rows"

    def __init__(self) -> None:
        self.sort_key = lambda i: -i  # batched in reverse: the rows must come back in input order

    def preprocess(self, samples):
        return np.asarray(samples, np.float32)

    def encode(self, batch):
        return (batch[:, None] + np.arange(D, dtype=np.float32)) / N


def test_extraction_writes_batches_into_one_output_of_the_feature_size():
    feats, peak = traced_peak(lambda: extract(RowEncoder(), list(range(N)), batch_size=500))
    np.testing.assert_array_equal(feats, RowEncoder().encode(np.arange(N, dtype=np.float32)))
    assert peak <= 1.3 * FEATURE_BYTES, f"extraction peak {peak / FEATURE_BYTES:.2f}x the feature bytes"
