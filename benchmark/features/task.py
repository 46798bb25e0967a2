"""The harness's side of a protocol call: one (encoder, dataset) pair, loaded once, its features cached.

:class:`HarnessTask` is the :class:`~benchmark.specs.EvalTask` every protocol receives: ``features(split)``
extracts a split once (or reads it from the feature cache) and keeps it for the pair's other protocols.
"""

from __future__ import annotations

import copy
import sys
import time
from typing import Any

import numpy as np

from benchmark.catalog import Resolved
from benchmark.features.cache import FeatureCache, cache_key
from benchmark.features.extract import extract, place_encoder
from benchmark.specs import Dataset, Encoder, Fittable


def load_pair(enc: Resolved, dset: Resolved, device: str) -> tuple[Dataset, Encoder]:
    dataset = dset.load()
    encoder = enc.load()
    if isinstance(encoder, Fittable):
        encoder.fit(dataset.split("train").samples)
    return dataset, place_encoder(encoder, device)


class HarnessTask:
    """The :class:`~benchmark.specs.EvalTask` the harness hands to protocols: cached features of one pair."""

    def __init__(self, encoder: Encoder, encoder_label: str, dataset: Dataset, *, device: str, cache: FeatureCache,
                 precision: str = "fp32", seed: int = 0, batch_size: int = 256, quiet: bool = False) -> None:
        self.encoder = encoder
        self.encoder_name = encoder_label
        self.dataset = dataset
        self.seed = seed
        self.device = device
        self.num_classes = len(dataset.classes)
        self._batch_size = batch_size
        self._quiet = quiet
        self._cache = cache
        self._precision = precision
        self._features: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.timings: dict[str, float] = {}
        self.cached: dict[str, bool] = {}

    def has_split(self, split: str) -> bool:
        return split in self.dataset.splits

    def features(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._features:
            self._features[split] = self._extract(split)
        return self._features[split]

    def _extract(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        data = self.dataset.split(split)
        key = cache_key(self.encoder.fingerprint, self.dataset.fingerprint, split, self._precision)
        hit = self._cache.get(key)
        if hit is not None and len(hit[1]) == len(data) and np.array_equal(hit[1], data.labels):
            self.cached[split], self.timings[split] = True, 0.0
            return hit
        start = time.perf_counter()
        with progress_bar(len(data), f"{self.encoder_name} on {split}", self._quiet) as bar:
            feats = extract(self.encoder, data.samples, device=self.device, batch_size=self._batch_size,
                            precision=self._precision, progress=bar.update)
        self.timings[split] = time.perf_counter() - start
        self.cached[split] = False
        self._cache.put(key, feats, data.labels)
        return feats, data.labels

    @property
    def embed_dim(self) -> int | None:
        """The feature width actually extracted (None before any extraction)."""
        return next((int(f.shape[1]) for f, _ in self._features.values()), None)

    def load_encoder(self) -> Encoder:
        """A private copy of the encoder on the device, so training it never changes later cells' features."""
        return place_encoder(copy.deepcopy(self.encoder), self.device)


def progress_bar(total: int, desc: str, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=quiet or None, leave=False, file=sys.stderr)
