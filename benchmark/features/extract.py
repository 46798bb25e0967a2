"""Feature extraction: raw samples -> float32 features on the chosen device.

Extraction batches raw samples through ``encoder.preprocess`` and ``encoder.encode`` under ``torch.inference_mode``
on the chosen device (CUDA when present), optionally under bf16/fp16 autocast, in length-sorted order when the
encoder defines ``sort_key``. Features are stored as float32.

The cache (:mod:`benchmark.features.cache`) stores what this returns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from benchmark.specs import PRECISIONS, Encoder


def best_device(requested: str | None = None) -> str:
    """``requested`` if given, else "cuda" when a GPU is visible, else "cpu"."""
    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {requested!r} was requested but torch sees no CUDA GPU; use --device cpu")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


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


def extract(
    encoder: Encoder,
    samples: Sequence[Any],
    *,
    device: str = "cpu",
    batch_size: int = 256,
    precision: str = "fp32",
    progress: Callable[[int], None] | None = None,
    sort: bool = True,
) -> np.ndarray:
    """Encode every sample; returns float32 features (N, D) in the order of ``samples``.

    With ``sort`` (the default) and an encoder that has ``sort_key``, batches are formed in key order (similar
    lengths together, less padding) and the result is put back in input order.
    ``progress(n)`` is called after each batch with the number of samples just encoded.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    n = len(samples)
    order = np.arange(n)
    sort_key = getattr(encoder, "sort_key", None) if sort else None
    if sort_key is not None:
        order = np.argsort([sort_key(samples[i]) for i in range(n)], kind="stable")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = dtype is not None and device.startswith("cuda")
    chunks: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            batch = to_device(encoder.preprocess([samples[i] for i in idx]), device)
            with torch.autocast("cuda", dtype=dtype) if autocast else contextlib.nullcontext():
                out = encoder.encode(batch)
            chunks.append(np.asarray(torch.as_tensor(out).float().cpu().numpy(), dtype=np.float32))
            if progress:
                progress(len(idx))
    if not chunks:
        return np.zeros((0, getattr(encoder, "embed_dim", 0) or 0), np.float32)
    features = np.concatenate(chunks)
    if features.ndim != 2 or features.shape[0] != n:
        raise ValueError(f"encoder returned features of shape {features.shape}, expected ({n}, D)")
    out = np.empty_like(features)
    out[order] = features
    if not np.isfinite(out).all():
        raise FloatingPointError("encoder produced NaN or infinite features; try --precision fp32")
    return out


