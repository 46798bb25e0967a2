"""Feature extraction: raw samples -> float32 features on the chosen device.

Extraction batches raw samples through ``encoder.preprocess`` and ``encoder.encode`` under ``torch.inference_mode``
on the chosen device (CUDA when present), optionally under bf16/fp16 autocast, in length-sorted order when the
encoder is :class:`~benchmark.specs.Sortable`. Features are stored as float32; every batch is checked against
the encoder contract (shape, width, finite values) before it is kept.

The cache (:mod:`benchmark.features.cache`) stores what this returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from benchmark.errors import ContractError, OptionError
from benchmark.features.contracts import check_batch, check_finite
from benchmark.runtime.devices import PRECISIONS, autocast, effective_precision
from benchmark.specs import Encoder, Sortable


def to_device(batch: Any, device: str) -> Any:
    """Move a tensor, or the tensors of a dict/list, to ``device``; anything else passes through."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and isinstance(batch[0], torch.Tensor):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def place_encoder(encoder: Encoder, device: str) -> Encoder:
    """Move an ``nn.Module`` encoder to ``device`` in eval mode; other encoders are returned as they are."""
    if isinstance(encoder, torch.nn.Module):
        encoder.to(device).eval()
    return encoder


def encoder_name(encoder: Encoder) -> str:
    """What messages call an encoder that was given no label: its ``name`` attribute, else its class name."""
    name = getattr(encoder, "name", None)
    return name if isinstance(name, str) and name else type(encoder).__name__


def extract(
    encoder: Encoder,
    samples: Sequence[Any],
    *,
    device: str = "cpu",
    batch_size: int = 256,
    precision: str = "fp32",
    progress: Callable[[int], None] | None = None,
    sort: bool = True,
    name: str | None = None,
    workers: int = 0,
) -> np.ndarray:
    """Encode every sample; returns float32 features (N, D) in the order of ``samples``.

    ``workers > 0`` decodes and preprocesses the batches in that many ``DataLoader`` worker processes (pinned
    memory and non-blocking copies on CUDA), so preprocessing overlaps the forward pass; the batches, their
    order and so the features are exactly those of ``workers=0``, which preprocesses in this process.

    With ``sort`` (the default) and a :class:`~benchmark.specs.Sortable` encoder, batches are formed in
    ``sort_key`` order (similar lengths together, less padding) and the result is put back in input order.
    ``progress(n)`` is called after each batch with the number of samples just encoded.

    Every batch is checked (:mod:`benchmark.features.contracts`): 2-D, one row per sample, as wide as
    ``encoder.embed_dim`` once that is known (read after each batch: raw pixels learn it from the first one),
    finite. A violation raises :class:`~benchmark.errors.ContractError` naming the encoder (``name``, default
    :func:`encoder_name`) and what to do; nothing broken is returned.
    """
    if precision not in PRECISIONS:
        raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    label = name or encoder_name(encoder)
    n = len(samples)
    order = extraction_order(encoder, samples, sort)
    context, _ = autocast(device, effective_precision(precision, device))
    # the order is known in advance, so each batch is written at its rows of one preallocated output (allocated
    # once the first batch gives the width): the features plus one batch, never a list of batches to concatenate
    features: np.ndarray | None = None
    batches = [order[start : start + batch_size] for start in range(0, n, batch_size)]
    source = _Batches(encoder, samples, batches)
    with torch.inference_mode():
        for idx, pre in zip(batches, _loader(source, workers, device), strict=True):
            batch = to_device(pre, device)
            with context():
                out = encoder.encode(batch)
            chunk = np.asarray(torch.as_tensor(out).float().cpu().numpy(), dtype=np.float32)
            _check_chunk(chunk, idx, None if features is None else features.shape[1], encoder, label, precision)
            if features is None:
                features = np.empty((n, chunk.shape[1]), np.float32)
            features[idx] = chunk
            del out, chunk
            if progress:
                progress(len(idx))
    if features is None:
        return np.zeros((0, encoder.embed_dim or 0), np.float32)
    return features


def extraction_order(encoder: Encoder, samples: Sequence[Any], sort: bool = True) -> np.ndarray:
    """The order samples are batched in: by ``sort_key`` (stable) for a :class:`~benchmark.specs.Sortable`
    encoder when ``sort``, else input order. Data-parallel extraction shards this same order over the ranks."""
    n = len(samples)
    if sort and isinstance(encoder, Sortable):
        return np.argsort([encoder.sort_key(samples[i]) for i in range(n)], kind="stable")
    return np.arange(n)


class _Batches(torch.utils.data.Dataset):
    """Batch ``b`` is ``encoder.preprocess`` of the samples at ``batches[b]``: what each loader worker computes."""

    def __init__(self, encoder: Encoder, samples: Sequence[Any], batches: list[np.ndarray]) -> None:
        self.encoder, self.samples, self.batches = encoder, samples, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> Any:
        return self.encoder.preprocess([self.samples[int(i)] for i in self.batches[b]])


def _loader(source: _Batches, workers: int, device: str) -> Any:
    """The preprocessed batches in order: in this process for ``workers=0``, else from a DataLoader."""
    if workers < 0:
        raise OptionError(f"--workers must be >= 0, got {workers}")
    if workers == 0:
        return (source[b] for b in range(len(source)))
    return torch.utils.data.DataLoader(source, batch_size=None, shuffle=False, num_workers=workers,
                                       pin_memory=device.startswith("cuda"))


def default_workers(device: str) -> int:
    """Loader workers when the user names none: on CUDA one per spare CPU core (up to 8), so decoding keeps the
    GPU busy; on the CPU none, since workers would compete with the model for the same cores."""
    if not device.startswith("cuda"):
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def _check_chunk(chunk: np.ndarray, idx: np.ndarray, width: int | None, encoder: Encoder, label: str,
                 precision: str) -> None:
    """One batch's features: (len(idx), embed_dim), as wide as the batches before it (``width``; None for the
    first), finite."""
    check_batch(chunk, len(idx), encoder.embed_dim, label)
    if width is not None and chunk.shape[1] != width:
        raise ContractError(f"encoder {label!r} returned batches of different widths ({width} "
                            f"then {chunk.shape[1]}); every batch must have the same embed_dim")
    check_finite(chunk, label, precision, positions=idx)
