"""The harness's side of a protocol call: one (encoder, dataset) pair, loaded once, its features cached.

:class:`HarnessTask` is the :class:`~benchmark.specs.EvalTask` every protocol receives: ``features(split)``
extracts a split once (or reads it from the feature cache) and keeps it for the pair's other protocols.

It checks what the plugins hand over (:mod:`benchmark.features.contracts`), raising
:class:`~benchmark.errors.ContractError` naming the plugin, the split and the fix: each split has one label per
sample and labels in ``0 .. len(classes) - 1``; features are finite float32 (N, D), as wide as the encoder's
``embed_dim`` (when declared) and as every other split's.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from benchmark.catalog import Resolved
from benchmark.errors import ContractError, RepbenchError
from benchmark.features import distributed as ranks
from benchmark.features.cache import FeatureCache, cache_key
from benchmark.features.contracts import SPLIT_LABELS, check_classes, check_features, checked_split
from benchmark.features.extract import extract, place_encoder
from benchmark.specs import Dataset, Encoder, FieldDataset, Fittable, SharedSplits, Split


def load_pair(enc: Resolved, dset: Resolved, device: str) -> tuple[Dataset, Encoder]:
    """Load the dataset and the encoder, fit a :class:`~benchmark.specs.Fittable` encoder on the (checked) train
    split, and place the encoder on ``device``."""
    try:
        dataset = dset.load()
    except ValueError as exc:
        if isinstance(exc, RepbenchError) or not SPLIT_LABELS.match(str(exc)):
            raise
        raise ContractError(f"dataset {dset.label!r}: {exc}; fix the dataset plugin") from exc
    check_classes(dataset, dset.label)
    encoder = enc.load()
    if isinstance(encoder, Fittable):
        encoder.fit(dataset.fit_samples() if isinstance(dataset, FieldDataset)  # task kinds: unlabelled texts
                    else checked_split(dataset, "train", dset.label).samples)
    return dataset, place_encoder(encoder, device)


class HarnessTask:
    """The :class:`~benchmark.specs.EvalTask` the harness hands to protocols: cached features of one pair."""

    def __init__(self, encoder: Encoder, encoder_label: str, dataset: Dataset, *, device: str, cache: FeatureCache,
                 precision: str = "fp32", seed: int = 0, batch_size: int = 256, quiet: bool = False,
                 dataset_label: str | None = None, workers: int = 0) -> None:
        self.encoder = encoder
        self._workers = workers
        self._splits: dict[str, Split] = {}
        self.encoder_name = encoder_label
        self.dataset = dataset
        self.dataset_name = dataset_label or getattr(dataset, "name", None) or type(dataset).__name__
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
        self._fields: dict[str, np.ndarray] = {}
        #: field -> {"role", "prompt"}: how each field of a task kind was encoded (records say it).
        self.roles: dict[str, dict[str, Any]] = {}

    def has_split(self, split: str) -> bool:
        return split in self.dataset.splits

    def features(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._features:
            self._features[split] = self._extract(split)
        return self._features[split]

    def checked_split(self, split: str) -> Split:
        """The dataset's split, checked once per task: one label per sample, labels within the classes
        (ContractError). Extraction and every protocol output check of the pair's cells reuse it."""
        if split not in self._splits:
            self._splits[split] = checked_split(self.dataset, split, self.dataset_name)
        return self._splits[split]

    def _extract(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        data = self.checked_split(split)
        labels = np.asarray(data.labels, dtype=np.int64)
        data_fp = self.dataset.split_fingerprint(split) if isinstance(self.dataset, SharedSplits) \
            else self.dataset.fingerprint
        key = cache_key(self.encoder.fingerprint, data_fp, split, self._precision)
        hit = self._cache.get(key, labels=labels, embed_dim=self.encoder.embed_dim)
        if hit is not None:
            self._check_width(hit[0], split)
            self.cached[split], self.timings[split] = True, 0.0
            return hit
        start = time.perf_counter()
        with progress_bar(ranks.share(len(data)), f"{self.encoder_name} on {split}", self._quiet) as bar:
            if ranks.leading():  # under torchrun: every rank encodes a share (benchmark/features/distributed.py)
                feats = ranks.extract_shared(self._request(split, len(data)), self.encoder, data.samples,
                                             device=self.device, workers=self._workers, progress=bar.update)
            else:
                feats = extract(self.encoder, data.samples, device=self.device, batch_size=self._batch_size,
                                precision=self._precision, progress=bar.update, name=self.encoder_name,
                                workers=self._workers)
        self.timings[split] = time.perf_counter() - start
        check_features(feats, labels, self.encoder_name, split, self.encoder.embed_dim)
        self._check_width(feats, split)
        self.cached[split] = False
        self._cache.put(key, feats, labels)
        # the entry just written, mapped: the pair's protocols read it from the page cache, the extracted copy goes
        return self._cache.mapped(key, feats), labels

    def embeddings(self, field: str) -> np.ndarray:
        """float32 (N, D) features of one field of a :class:`~benchmark.specs.FieldDataset`, encoded once in the
        field's role (:mod:`benchmark.features.fields`) and cached; kept for the pair's other protocols."""
        if field not in self._fields:
            self._fields[field] = self._extract_field(field)
        return self._fields[field]

    def _extract_field(self, name: str) -> np.ndarray:
        from benchmark.features import fields

        if not isinstance(self.dataset, FieldDataset):
            raise ContractError(f"dataset {self.dataset_name!r} is a classification dataset: it has no field "
                                f"{name!r}; use features(split)")
        known = self.dataset.fields()
        if name not in known:
            raise ContractError(f"dataset {self.dataset_name!r} has no field {name!r}; it has {', '.join(known)}")
        samples, role = known[name].samples, known[name].role
        encoder, how = fields.describe(self.encoder, name, samples, role, self.device, self._precision)
        self.roles[name] = how.block()
        ids = np.zeros(len(samples), np.int64)
        hit = self._cache.get(how.key, labels=ids, embed_dim=encoder.embed_dim)
        if hit is not None:
            self._check_width(hit[0], name)
            self.cached[name], self.timings[name] = True, 0.0
            return hit[0]
        start = time.perf_counter()
        with progress_bar(ranks.share(len(samples)), f"{self.encoder_name} on {name}", self._quiet) as bar:
            if ranks.leading():  # under torchrun: every rank encodes a share of the field, in its role
                req = replace(self._request(name, len(samples)), field=True, role=role)
                feats = ranks.extract_shared(req, encoder, samples, device=self.device, workers=self._workers,
                                             progress=bar.update)
            else:
                feats = extract(encoder, samples, device=self.device, batch_size=self._batch_size,
                                precision=self._precision, progress=bar.update, name=self.encoder_name,
                                workers=self._workers)
        self.timings[name] = time.perf_counter() - start
        fields.checked_field(feats, len(samples), self.encoder_name, name, encoder.embed_dim)
        self._check_width(feats, name)
        self.cached[name] = False
        self._cache.put(how.key, feats, ids)
        return self._cache.mapped(how.key, feats)

    def _request(self, split: str, n: int) -> ranks.Request:
        """What the other ranks need to extract their share of ``split`` as this task would."""
        return ranks.Request(self.encoder_name, self.dataset_name, split, n, self._batch_size, self._precision,
                             self.encoder.fingerprint, self.dataset.fingerprint)

    def _check_width(self, feats: np.ndarray, split: str) -> None:
        """Every split of the pair has the same width (an encoder whose embed_dim is None declares none)."""
        width = self.embed_dim
        if width is not None and feats.shape[1] != width:
            raise ContractError(f"encoder {self.encoder_name!r} returned features {feats.shape[1]} wide on split "
                                f"{split!r} but {width} wide on the other splits; every split must have the "
                                "encoder's one embed_dim")

    @property
    def embed_dim(self) -> int | None:
        """The feature width actually extracted (None before any extraction)."""
        widths = [int(f.shape[1]) for f, _ in self._features.values()] + [int(f.shape[1]) for f in
                                                                          self._fields.values()]
        return widths[0] if widths else None

    def load_encoder(self) -> Encoder:
        """A private copy of the encoder on the device, so training it never changes later cells' features."""
        return place_encoder(copy.deepcopy(self.encoder), self.device)


def progress_bar(total: int, desc: str, quiet: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="sample", disable=quiet or None, leave=False, file=sys.stderr)
