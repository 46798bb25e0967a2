"""The on-disk feature cache: one ``.npz`` (``features`` float32, ``labels`` int64) per key.

The key covers the encoder fingerprint (name, weights hash, preprocessing), the dataset fingerprint, the split and
the precision, plus a format version, so a changed model or split never reuses stale features.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.atomic import atomic_path
from benchmark.digest import digest
from benchmark.paths import default_cache_dir

CACHE_FORMAT = 1


def cache_key(encoder_fingerprint: str, dataset_fingerprint: str, split: str, precision: str) -> str:
    payload = {"v": CACHE_FORMAT, "enc": encoder_fingerprint, "data": dataset_fingerprint, "split": split,
               "precision": precision}
    return digest(payload, 24)


class FeatureCache:
    """npz files (arrays ``features`` float32, ``labels`` int64) under ``root``, one per cache key."""

    def __init__(self, root: Path | str | None = None, enabled: bool = True) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.enabled = enabled

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.enabled:
            return None
        p = self.path(key)
        if not p.exists():
            return None
        try:
            with np.load(p) as data:
                return data["features"].astype(np.float32, copy=False), data["labels"].astype(np.int64)
        except Exception:  # a corrupt entry (killed mid-write on a filesystem without atomic rename) is recomputed
            return None

    def put(self, key: str, features: np.ndarray, labels: np.ndarray) -> None:
        if not self.enabled:
            return
        save_npz(self.path(key), features, labels)


def save_npz(path: Path | str, features: np.ndarray, labels: np.ndarray) -> None:
    """Write ``features`` (float32) and ``labels`` (int64) to ``path`` atomically."""
    with atomic_path(Path(path)) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, features=np.asarray(features, np.float32), labels=np.asarray(labels, np.int64))
