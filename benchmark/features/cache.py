"""The on-disk feature cache: one ``.npz`` (``features`` float32, ``labels`` int64) per key, memory-mapped on read.

Entries are written with each array's data aligned in the file (:mod:`benchmark.features.npzmap`), so
:meth:`FeatureCache.get` maps the features instead of reading them: a split costs page cache, not a private copy,
and the protocols read the rows they use. An entry ``np.savez`` wrote (repbench before it mapped the cache) is read
whole once, validated, and rewritten aligned.

The key covers the encoder fingerprint (name, weights hash, preprocessing), the dataset fingerprint, the split and
the precision, plus a format version, so a changed model or split never reuses stale features.

A cache file is never trusted blindly: :meth:`FeatureCache.get` validates what it reads (finite float32 2-D
features, one row per label, the split's labels, the encoder's width) and discards an entry that fails, with a
warning naming the file and the cause, so the caller recomputes instead of scoring broken features as "ok".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmark.features.npzmap import read_npz, write_npz
from benchmark.storage.atomic import atomic_path, remove_stale_temps
from benchmark.storage.chunked import nonfinite_rows
from benchmark.storage.digest import digest
from benchmark.storage.paths import default_cache_dir

CACHE_FORMAT = 1


class CacheWarning(UserWarning):
    """A feature-cache entry was unreadable or invalid and has been discarded (the features are recomputed)."""


def cache_key(encoder_fingerprint: str, dataset_fingerprint: str, split: str, precision: str) -> str:
    payload = {"v": CACHE_FORMAT, "enc": encoder_fingerprint, "data": dataset_fingerprint, "split": split,
               "precision": precision}
    return digest(payload, 24)


class FeatureCache:
    """npz files (arrays ``features`` float32, ``labels`` int64) under ``root``, one per cache key.

    ``log(message)`` receives the warning for each discarded entry (default: :func:`warnings.warn` with
    :class:`CacheWarning`). On first use the temporary files of writes killed long ago are removed from ``root``
    (:func:`~benchmark.storage.atomic.remove_stale_temps`).
    """

    def __init__(self, root: Path | str | None = None, enabled: bool = True,
                 log: Callable[[str], None] | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled
        self._log = log
        self._swept = False

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def _sweep(self) -> None:
        if not self._swept:
            self._swept = True
            remove_stale_temps(self.root)

    def get(self, key: str, labels: np.ndarray | None = None, embed_dim: int | None = None
            ) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached (features float32 (N, D), labels int64 (N,)) of ``key``, or None to recompute.

        None when the cache is disabled, the entry is missing, or it is invalid: unreadable, not finite float32
        2-D features, not one int64 label per row, labels different from ``labels`` (the split's, when given), or
        a width different from ``embed_dim`` (when given). An invalid entry is deleted and reported to ``log``.
        """
        if not self.enabled:
            return None
        self._sweep()
        p = self.path(key)
        if not p.exists():
            return None
        try:  # memory-mapped (benchmark/features/npzmap.py): protocols read rows from the page cache
            data = read_npz(p, ("features", "labels"))
            feats, stored = data["features"], np.asarray(data["labels"])
        except Exception as exc:  # truncated, not an npz, missing arrays: recompute
            self._discard(p, f"unreadable ({type(exc).__name__}: {exc})")
            return None
        cause = invalid_entry(feats, stored, labels, embed_dim)
        if cause is not None:
            del feats
            self._discard(p, cause)
            return None
        if not isinstance(feats, np.memmap) and len(feats):  # an entry np.savez wrote (before repbench mapped
            save_npz(p, feats, stored)  # its cache): rewritten aligned, so the next read maps it
        return feats, stored

    def _discard(self, path: Path, cause: str) -> None:
        path.unlink(missing_ok=True)
        self._warn(f"feature cache file {path}: {cause}; discarded, the features are recomputed")

    def _warn(self, message: str) -> None:
        if self._log is not None:
            self._log(message)
        else:
            warnings.warn(message, CacheWarning, stacklevel=4)

    def put(self, key: str, features: np.ndarray, labels: np.ndarray) -> None:
        if not self.enabled:
            return
        self._sweep()
        try:
            save_npz(self.path(key), features, labels)
        except OSError as exc:  # a full or read-only cache disk: the features are computed, the cell goes on
            self._warn(f"feature cache: cannot write {self.path(key)} ({exc.strerror or exc}); the features are "
                       "used without being cached")

    def mapped(self, key: str, features: np.ndarray) -> np.ndarray:
        """``features``, just :meth:`put` under ``key``, as the memory map of that entry, so the caller can drop
        its in-memory array and the protocols read rows from the page cache; ``features`` itself when the cache
        is off, the write failed, or the entry does not map (no error: the in-memory array is as good)."""
        if not self.enabled or not len(features):
            return features
        try:
            feats = read_npz(self.path(key), ("features",))["features"]
        except Exception:  # noqa: BLE001 (not written, or replaced by another process: keep what we have)
            return features
        same = isinstance(feats, np.memmap) and feats.shape == features.shape and feats.dtype == features.dtype
        return feats if same else features


def invalid_entry(features: np.ndarray, labels: np.ndarray, expected: np.ndarray | None = None,
                  embed_dim: int | None = None) -> str | None:
    """Why a cache entry's arrays cannot be used (a phrase for a message), or None when they are valid."""
    if features.dtype != np.float32 or features.ndim != 2:
        return f"features are {features.dtype} of shape {features.shape}, not a float32 (N, D) array"
    if labels.dtype != np.int64 or labels.ndim != 1 or len(labels) != len(features):
        return f"labels are {labels.dtype} of shape {labels.shape} for {len(features)} feature rows"
    if expected is not None and not np.array_equal(labels, expected):
        return f"its {len(labels)} labels differ from the split's {len(expected)}"
    if embed_dim is not None and features.shape[1] != embed_dim:
        return f"features are {features.shape[1]} wide but the encoder's embed_dim is {embed_dim}"
    rows, count = nonfinite_rows(features)  # in row chunks: no mask as large as the features
    if count:
        return f"{count} non-finite feature values in {len(rows)} rows"
    return None


def save_npz(path: Path | str, features: np.ndarray, labels: np.ndarray) -> None:
    """Write ``features`` (float32) and ``labels`` (int64) to ``path`` atomically, as an npz whose arrays can be
    memory-mapped (:func:`~benchmark.features.npzmap.write_npz`; ``np.load`` reads it as any npz)."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        write_npz(fh, {"features": np.asarray(features, np.float32), "labels": np.asarray(labels, np.int64)})
