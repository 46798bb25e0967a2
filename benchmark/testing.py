"""Helpers for plugin authors and repbench's own tests: plugin managers with given plugins, tiny synthetic data,
an in-memory evaluation task, and conformance checks for what plugins return.

The conformance checks (:func:`check_dataset`, :func:`check_split`, :func:`check_encoder`,
:func:`check_protocol`, :func:`check_protocol_output`) raise :class:`~benchmark.errors.ContractError` with a
message naming the plugin, the split and the fix; the harness runs the same checks
(:mod:`benchmark.features.contracts`) on every run."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from benchmark.catalog import Catalog
from benchmark.errors import ContractError
from benchmark.features import contracts
from benchmark.features.contracts import check_protocol_output
from benchmark.features.extract import encoder_name, extract, place_encoder
from benchmark.plugins import PluginSet, make_plugin_manager
from benchmark.specs import (
    MODALITIES,
    Dataset,
    Encoder,
    EvalTask,
    Fittable,
    ProtocolOutput,
    ProtocolSpec,
    Split,
)

__all__ = ["ArrayTask", "blobs", "catalog_with", "check_dataset", "check_encoder", "check_protocol",
           "check_protocol_output", "check_split"]


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
        self.dataset = dataset

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


def check_split(split: Split, modality: str, *, dataset: str = "dataset", name: str = "split",
                num_classes: int | None = None) -> None:
    """Conformance: a non-empty split whose samples have the modality's raw type (PIL images or str), with one
    int64 label per sample (within ``0 .. num_classes - 1`` when given). Raises ContractError naming the split."""
    from PIL import Image

    where = f"dataset {dataset!r} split {name!r}"
    contracts.check_split_lengths(split.samples, split.labels, dataset, name)
    if len(split.labels) == 0:
        raise ContractError(f"{where} is empty; a dataset's splits need at least one sample")
    want: Any = Image.Image if modality == "image" else str
    bad = [type(s).__name__ for s in split.samples[:16] if not isinstance(s, want)]
    if bad:
        raise ContractError(f"{where}: {modality} samples must be {want.__name__}, got {bad[:3]}")
    if split.labels.dtype != np.int64:
        raise ContractError(f"{where}: labels must be int64, got {split.labels.dtype}; build it with Split(...)")
    if num_classes is not None:
        contracts.check_labels(split.labels, num_classes, dataset, name)


def check_dataset(dataset: Dataset, splits: Sequence[str] = ("train", "test"), name: str | None = None) -> None:
    """Conformance for a loaded dataset: required splits, labels within classes, info and fingerprint present.

    Raises :class:`~benchmark.errors.ContractError` naming the dataset (``name``, default its ``name`` attribute)
    and, where one is at fault, the split.
    """
    label = name or getattr(dataset, "name", None) or type(dataset).__name__
    missing = sorted(set(splits) - set(dataset.splits))
    if missing:
        raise ContractError(f"dataset {label!r} lacks the split(s) {missing}; it has {list(dataset.splits)}")
    for s in dataset.splits:
        check_split(dataset.split(s), dataset.modality, dataset=label, name=s, num_classes=len(dataset.classes))
    if not isinstance(dataset.info, Mapping) or "split_sizes" not in dataset.info:
        raise ContractError(f"dataset {label!r}: info must be a mapping with 'split_sizes' (and the source)")
    if not isinstance(dataset.fingerprint, str) or not dataset.fingerprint:
        raise ContractError(f"dataset {label!r}: fingerprint must be a non-empty string that changes with the "
                            "samples (it keys the feature cache)")


ENCODER_INFO_KEYS = ("weights", "params", "embed_dim")


def check_encoder(encoder: Encoder, samples: Sequence[Any], *, name: str | None = None, batch_size: int = 2,
                  device: str = "cpu") -> np.ndarray:
    """Conformance for a loaded encoder on a few raw ``samples``: fits it first when it is Fittable, extracts
    (which checks each batch's shape, width and finiteness), then checks the features are float32
    (len(samples), embed_dim), ``info`` has ``weights``, ``params`` and ``embed_dim`` and the ``fingerprint`` is
    a non-empty string. Raises ContractError naming the encoder; returns the features."""
    label = name or encoder_name(encoder)
    if encoder.modality not in MODALITIES:
        raise ContractError(f"encoder {label!r}: modality must be one of {MODALITIES}, got {encoder.modality!r}")
    if isinstance(encoder, Fittable):
        encoder.fit(samples)
    feats = extract(place_encoder(encoder, device), samples, batch_size=batch_size, device=device, name=label)
    contracts.check_features(feats, np.zeros(len(samples)), label, "samples", encoder.embed_dim)
    missing = [k for k in ENCODER_INFO_KEYS if k not in encoder.info]
    if missing:
        raise ContractError(f"encoder {label!r}: info lacks {missing}; records need {list(ENCODER_INFO_KEYS)}")
    if not isinstance(encoder.fingerprint, str) or not encoder.fingerprint:
        raise ContractError(f"encoder {label!r}: fingerprint must be a non-empty string covering weights and "
                            "preprocessing (it keys the feature cache)")
    return feats


def check_protocol(spec: ProtocolSpec, task: EvalTask, **options: Any) -> ProtocolOutput:
    """Conformance for a protocol: ``spec.evaluate(task, **defaults overridden by options)`` returns a valid
    :class:`~benchmark.specs.ProtocolOutput` for the task's test split (:func:`check_protocol_output`), and a
    ``top1`` metric when it scores itself. Raises ContractError naming the protocol; returns the output."""
    output = spec.evaluate(task, **{**dict(spec.defaults), **options})
    n_test = len(task.features("test")[1])
    check_protocol_output(output, n_test, task.num_classes, spec.name)
    if output.predictions is None and spec.primary_metric not in output.metrics:
        raise ContractError(f"protocol {spec.name!r} returned no predictions and no {spec.primary_metric!r} "
                            "metric: return predictions and labels, or score itself in metrics")
    return output


@contextmanager
def gloo_group(**init: Any) -> Iterator[None]:
    """One rank of a CPU (gloo) process group for a multi-process test: ``init`` goes to
    ``torch.distributed.init_process_group`` (``init_method``, ``rank``, ``world_size``; none under torchrun). On
    a clean exit the rank leaves in step with the others (:func:`benchmark.runtime.distributed.leave`: a barrier,
    then destroy); after an error it destroys its group without waiting for ranks that may never arrive."""
    import torch.distributed

    from benchmark.runtime.distributed import leave

    torch.distributed.init_process_group("gloo", **init)
    try:
        yield
    except BaseException:
        torch.distributed.destroy_process_group()
        raise
    leave()
