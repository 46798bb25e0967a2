"""Helpers for plugin authors and repbench's own tests: plugin managers with given plugins, tiny synthetic data,
an in-memory evaluation task, and conformance checks for specs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmark.catalog import Catalog
from benchmark.plugins import PluginSet, make_plugin_manager
from benchmark.specs import Dataset, Encoder, Split


def catalog_with(*plugins: tuple[str, object], builtins: bool = True) -> Catalog:
    """A catalog of the built-ins (optionally) plus the given (name, module) plugins, ignoring installed ones."""
    pset: PluginSet = make_plugin_manager(entry_points=[], builtins=None if builtins else {}, extra_plugins=plugins)
    return Catalog.load(pset)


def blobs(n_per_class: int = 50, n_classes: int = 3, dim: int = 16, seed: int = 0, spread: float = 1.0
          ) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: (features float32 (N, dim), labels int64 (N,)), separable when ``spread`` is small."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, size=(n_classes, dim))
    x = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) for c in centers]).astype(np.float32)
    y = np.repeat(np.arange(n_classes), n_per_class).astype(np.int64)
    order = rng.permutation(len(y))
    return x[order], y[order]


class ArrayTask:
    """An :class:`~benchmark.specs.EvalTask` over precomputed features, for testing protocols in isolation."""

    def __init__(self, splits: Mapping[str, tuple[np.ndarray, np.ndarray]], seed: int = 0, device: str = "cpu",
                 num_classes: int | None = None, encoder: Encoder | None = None, dataset: Dataset | None = None
                 ) -> None:
        self._splits = {k: (np.asarray(x, np.float32), np.asarray(y, np.int64)) for k, (x, y) in splits.items()}
        self.seed = seed
        self.device = device
        self.encoder_name = "array"
        labels = np.concatenate([y for _, y in self._splits.values()])
        self.num_classes = int(num_classes if num_classes is not None else labels.max() + 1)
        self._encoder = encoder
        self.dataset = dataset  # type: ignore[assignment]

    def features(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._splits:
            raise KeyError(f"no split {split!r}")
        return self._splits[split]

    def has_split(self, split: str) -> bool:
        return split in self._splits

    def load_encoder(self) -> Encoder:
        if self._encoder is None:
            raise RuntimeError("this ArrayTask has no encoder")
        return self._encoder


def check_split(split: Split, modality: str) -> None:
    """Conformance: a split's samples have the modality's raw type and labels are int64 of the same length."""
    from PIL import Image

    assert len(split.samples) == len(split.labels) > 0
    want: Any = Image.Image if modality == "image" else str
    bad = [type(s).__name__ for s in split.samples[:16] if not isinstance(s, want)]
    assert not bad, f"{modality} samples must be {want.__name__}, got {bad[:3]}"
    assert split.labels.dtype == np.int64


def check_dataset(dataset: Dataset, splits: Sequence[str] = ("train", "test")) -> None:
    """Conformance for a loaded dataset: required splits, labels within classes, info and fingerprint present."""
    assert set(splits) <= set(dataset.splits), f"missing splits: {set(splits) - set(dataset.splits)}"
    for s in dataset.splits:
        split = dataset.split(s)
        check_split(split, dataset.modality)
        assert split.labels.min() >= 0 and split.labels.max() < len(dataset.classes)
    assert isinstance(dataset.info, Mapping) and "split_sizes" in dataset.info
    assert isinstance(dataset.fingerprint, str) and dataset.fingerprint
