"""Building blocks for encoder plugins: a torch image encoder around any backbone, weight hashing, and quick
offline detection for plugins that download weights.

An encoder's ``fingerprint`` must change whenever its features could: it hashes the weights (every tensor in the
state dict) and the preprocessing, so a changed model never reuses stale cached features.

Downloads: :func:`hub_offline` says whether the user asked for no Hugging Face hub traffic (``HF_HUB_OFFLINE``),
:func:`host_reachable` whether a host answers within a couple of seconds, so an encoder fails at once with
:class:`~benchmark.errors.UnavailableWeights` instead of after a minute of retries.
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import threading
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmark.errors import DataError
from benchmark.storage.digest import digest

#: How long :func:`host_reachable` waits for a TCP connection (DNS lookup included).
PROBE_TIMEOUT_S = 2.0


def weights_hash(module: torch.nn.Module) -> str:
    """sha256 over the names, shapes, dtypes and bytes of every tensor in ``module.state_dict()`` (16 hex)."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def config_hash(config: Mapping[str, Any]) -> str:
    """A 16-hex digest of a configuration (for fingerprints)."""
    return digest(dict(config))


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class TorchImageEncoder(torch.nn.Module):
    """An image encoder: ``backbone(x) -> (B, D)`` pooled features, after a per-image ``transform`` to a tensor.

    ``weights`` says which weights were used (``"random-init(seed=0)"``, ``"pretrained:<tag>"``); it goes into
    every record. ``preprocess_config`` describes the transform (size, mean, std, ...) for records and the cache key.
    """

    modality = "image"

    def __init__(
        self,
        backbone: torch.nn.Module,
        embed_dim: int,
        transform: Callable[[Image.Image], torch.Tensor],
        preprocess_config: Mapping[str, Any],
        weights: str,
        name: str,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = backbone.eval()
        self.embed_dim = int(embed_dim)
        self.transform = transform
        self.preprocess_config = dict(preprocess_config)
        self.weights = weights
        self.name = name
        self.checkpoint = dict(checkpoint) if checkpoint is not None else None  # the user's file: name, sha256

    def preprocess(self, samples: Sequence[Image.Image]) -> torch.Tensor:
        return torch.stack([self.transform(s.convert("RGB")) for s in samples])

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        out = self.backbone(batch)
        return out.flatten(1)

    def example_batch(self, batch_size: int, *, seq_len: int | None = None, device: str = "cpu") -> torch.Tensor:
        """A random float32 batch (batch_size, C, H, W) on ``device``, for throughput runs
        (:class:`~benchmark.specs.ExampleBatch`): the shape is ``preprocess_config["input_size"]`` when the config
        states it (timm), else what ``preprocess`` makes of one blank RGB image (any plugin's transform);
        ``seq_len`` does not apply to images."""
        size = self.preprocess_config.get("input_size")
        if size is not None:
            c, h, w = (int(v) for v in size)
        else:
            from PIL import Image

            c, h, w = (int(v) for v in self.preprocess([Image.new("RGB", (64, 64))]).shape[1:])
        return torch.randn(batch_size, c, h, w, device=device)

    @functools.cached_property
    def weights_hash(self) -> str:
        """Computed once: the harness never changes an encoder after loading it (a protocol that trains gets a
        private copy from ``task.load_encoder()``), so the hash stays true for this object."""
        return weights_hash(self.backbone)

    @property
    def info(self) -> dict[str, Any]:
        out = {
            "weights": self.weights,
            "weights_hash": self.weights_hash,
            "params": count_params(self.backbone),
            "embed_dim": self.embed_dim,
            "preprocess": self.preprocess_config,
        }
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        return out

    @property
    def fingerprint(self) -> str:
        ident: dict[str, Any] = {"name": self.name, "weights": self.weights_hash, "pre": self.preprocess_config}
        if self.checkpoint is not None:  # unchanged for every encoder without one (their caches stay valid)
            ident["checkpoint"] = self.checkpoint.get("sha256")
        return config_hash(ident)


def pil_to_array(images: Sequence[Image.Image], size: int | None, mode: str) -> np.ndarray:
    """Images -> float32 array (N, C, H, W) in [0, 1], optionally resized to ``size`` x ``size``."""
    arrays = []
    for img in images:
        img = img.convert(mode)
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        a = np.asarray(img, dtype=np.float32) / 255.0
        arrays.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DataError(f"images have different sizes {sorted(shapes)[:3]}...; pass size=N to resize them all")
    return np.stack(arrays) if arrays else np.zeros((0, 1, 1, 1), np.float32)


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (huggingface_hub's constant, read at its import, or the variable now)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "true", "yes"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def host_reachable(url: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to ``url``'s host (or to the HTTPS proxy that would carry the request) opens
    within ``timeout`` seconds, DNS lookup included. A quick probe before a download that would otherwise retry
    for a minute; True does not promise the download works."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme != "http" else 80)
    proxy = urllib.request.getproxies().get(parts.scheme or "https")
    if proxy and not urllib.request.proxy_bypass(host):
        via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = via.hostname or host, via.port or 8080
    result: list[bool] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=connect, daemon=True)  # getaddrinfo ignores the socket timeout
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])
