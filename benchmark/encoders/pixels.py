"""The ``pixels`` encoder: flattened raw pixels, the raw-input baseline. A plain plugin module: copy it as the
template for your own encoder plugin."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from benchmark.encoders.base import config_hash, pil_to_array
from benchmark.errors import OptionError

GRAY_MODES = ("L", "1", "I;16")


class PixelsEncoder:
    """Flattened raw pixels in [0, 1]: the classic baseline every learned encoder must beat."""

    modality = "image"

    def __init__(self, size: int | None = None, mode: str = "auto") -> None:
        if mode not in ("auto", "L", "RGB"):
            raise OptionError(f"encoder 'pixels' option mode must be auto, L or RGB, got {mode!r}")
        self.size = size
        self.mode = mode
        self._resolved = None if mode == "auto" else mode
        self.embed_dim: int | None = None  # known once the first batch is seen: it depends on the images

    def fit(self, samples: Sequence[Image.Image]) -> None:
        """Fix ``mode="auto"`` once for every split: grayscale when all training images are, else RGB."""
        if self.mode == "auto":
            self._resolved = "L" if all(s.mode in GRAY_MODES for s in samples) else "RGB"

    def preprocess(self, samples: Sequence[Image.Image]) -> torch.Tensor:
        if self._resolved is None:  # used without fit(): the first batch decides, then it stays fixed
            self.fit(samples)
        return torch.from_numpy(pil_to_array(samples, self.size, self._resolved or "RGB"))

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        out = batch.flatten(1)
        self.embed_dim = out.shape[1]
        return out

    @property
    def info(self) -> dict[str, Any]:
        return {"weights": "none", "weights_hash": None, "params": 0, "embed_dim": self.embed_dim,
                "preprocess": {"size": self.size, "mode": self.mode, "scale": "1/255"}}

    @property
    def fingerprint(self) -> str:
        return config_hash({"name": "pixels", "size": self.size, "mode": self.mode, "resolved": self._resolved,
                            "v": 1})
