"""Row-chunked passes over feature matrices, so no temporary grows with the number of samples.

A split of ImageNet-1k features is 1.28M x 2048 float32 (10.5 GB): a whole-array ``np.isfinite`` mask costs
another quarter of that, a float64 copy twice it. These helpers walk the rows in chunks of about
:data:`CHUNK_BYTES` instead, so their extra memory is one chunk whatever N is:

* :func:`nonfinite_rows` / :func:`all_finite`: finiteness, row by row, for the checks on extraction, on every
  cache read and at protocol entry;
* :class:`RowSet`: rows of one or more arrays (each optionally indexed), a lazy ``np.concatenate`` of fancy-indexed
  splits; :meth:`RowSet.mean_std` accumulates per-feature mean and variance in float64 over the chunks (what
  scikit-learn's ``StandardScaler`` computes) and :meth:`RowSet.materialize` writes the (standardised) rows into
  one float32 matrix, the only copy the linear probe makes of its fit data.

Arrays may be memory-mapped (``np.load(mmap_mode="r")``): a chunk is read only when it is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

#: Bytes one chunk of rows may take in a chunked pass (its float64 temporaries included).
CHUNK_BYTES = 32 * 2**20


def chunk_rows(row_bytes: int, budget: int | None = None) -> int:
    """Rows per chunk so that a chunk of ``row_bytes``-byte rows fits in ``budget`` bytes (default
    :data:`CHUNK_BYTES`, read at call time; at least one row)."""
    return max(1, int(CHUNK_BYTES if budget is None else budget) // max(1, int(row_bytes)))


def row_slices(n: int, rows: int) -> Iterator[slice]:
    """``slice(0, rows), slice(rows, 2 rows), ...`` covering ``0 .. n - 1``."""
    for start in range(0, n, max(1, rows)):
        yield slice(start, min(n, start + rows))


def nonfinite_rows(x: np.ndarray, budget: int | None = None) -> tuple[np.ndarray, int]:
    """(sorted positions of the rows of the 2-D ``x`` holding a NaN or an infinity, how many such values), in
    chunks: the full ``isfinite`` mask is never built. Integer and bool arrays are finite."""
    if not np.issubdtype(x.dtype, np.inexact) or x.size == 0:
        return np.zeros(0, np.int64), 0
    bad_rows: list[np.ndarray] = []
    count = 0
    for sl in row_slices(len(x), chunk_rows(x.shape[1] * x.itemsize, budget)):
        finite = np.isfinite(x[sl])
        if finite.all():
            continue
        count += int(finite.size - np.count_nonzero(finite))
        bad_rows.append(np.flatnonzero(~finite.all(axis=1)) + sl.start)
    return (np.concatenate(bad_rows) if bad_rows else np.zeros(0, np.int64)), count


def all_finite(x: np.ndarray, budget: int | None = None) -> bool:
    """Whether every value of ``x`` (any shape; rows are its first axis) is finite, checked in row chunks."""
    if not np.issubdtype(x.dtype, np.inexact) or x.size == 0:
        return True
    flat = x.reshape(len(x), -1) if x.ndim != 2 else x
    rows = chunk_rows(flat.shape[1] * flat.itemsize, budget)
    return all(bool(np.isfinite(flat[sl]).all()) for sl in row_slices(len(flat), rows))


@dataclass(frozen=True)
class RowSet:
    """The rows of ``parts`` in turn: each part is ``(x, index)``, ``x[index]`` (all of ``x`` when ``index`` is
    None); what ``np.concatenate([x[index] for x, index in parts])`` would hold, never built unless asked for."""

    parts: tuple[tuple[np.ndarray, np.ndarray | None], ...]

    @classmethod
    def of(cls, *arrays: np.ndarray | tuple[np.ndarray, np.ndarray | None]) -> RowSet:
        """A RowSet of whole arrays and ``(array, index)`` pairs."""
        return cls(tuple(a if isinstance(a, tuple) else (a, None) for a in arrays))

    def __len__(self) -> int:
        return sum(len(x) if idx is None else len(idx) for x, idx in self.parts)

    @property
    def width(self) -> int:
        return int(self.parts[0][0].shape[1]) if self.parts else 0

    def chunks(self, budget: int | None = None, dtype: type | None = np.float32) -> Iterator[np.ndarray]:
        """The rows in order, as ``dtype`` arrays (None: as stored) of at most about ``budget`` bytes each as
        float64 (views where possible)."""
        rows = chunk_rows(self.width * 8, budget)
        for x, idx in self.parts:
            n = len(x) if idx is None else len(idx)
            for sl in row_slices(n, rows):
                chunk = x[sl] if idx is None else x[idx[sl]]
                yield chunk if dtype is None else np.asarray(chunk, dtype)

    def mean_std(self, budget: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-feature (mean, population standard deviation) in float64, two passes over float64 chunks (the
        sum, then the sum of squared deviations: ``np.std``'s algorithm, with the same rounding behaviour)."""
        n, d = len(self), self.width
        if n == 0:
            return np.full(d, np.nan), np.full(d, np.nan)
        total = np.zeros(d, np.float64)
        for chunk in self.chunks(budget, None):
            total += chunk.sum(axis=0, dtype=np.float64)
        mean = total / n
        squares = np.zeros(d, np.float64)
        for chunk in self.chunks(None if budget is None else budget // 2, None):
            dev = chunk.astype(np.float64)
            dev -= mean
            squares += np.einsum("ij,ij->j", dev, dev)
        return mean, np.sqrt(squares / n)

    def materialize(self, mean: np.ndarray | None = None, scale: np.ndarray | None = None,
                    budget: int | None = None) -> np.ndarray:
        """One C-contiguous float32 (len, width) matrix of the rows, standardised as ``(x - mean) / scale`` when
        ``mean`` is given (float32 arithmetic, as the whole-array expression), filled chunk by chunk."""
        out = np.empty((len(self), self.width), np.float32)
        at = 0
        for chunk in self.chunks(budget):
            rows = out[at:at + len(chunk)]
            if mean is None or scale is None:
                rows[...] = chunk
            else:
                np.subtract(chunk, mean, out=rows)
                rows /= scale
            at += len(chunk)
        return out
