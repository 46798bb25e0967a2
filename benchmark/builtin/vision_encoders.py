"""Built-in image encoders: ``pixels`` (the raw-input baseline) and ``timm/<model>`` for every timm architecture."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from benchmark.encoders import TorchImageEncoder, config_hash, pil_to_array
from benchmark.hookspecs import hookimpl
from benchmark.specs import EncoderSpec

GRAY_MODES = ("L", "1", "I;16")


class PixelsEncoder:
    """Flattened raw pixels in [0, 1]: the classic baseline every learned encoder must beat."""

    modality = "image"

    def __init__(self, size: int | None = None, mode: str = "auto") -> None:
        if mode not in ("auto", "L", "RGB"):
            raise ValueError(f"encoder 'pixels' option mode must be auto, L or RGB, got {mode!r}")
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
        return torch.from_numpy(pil_to_array(samples, self.size, self._resolved))

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


def load_timm(variant: str, pretrained: bool = True, img_size: int | None = None, seed: int = 0) -> TorchImageEncoder:
    """Any timm model as a feature extractor (classifier removed, pooled features).

    ``pretrained=True`` (the default, as users expect) downloads the weights through timm / the Hugging Face hub
    and fails with instructions when that is impossible; it never falls back to random weights silently.
    ``pretrained=False`` gives a seeded random initialisation, itself a standard baseline.
    """
    import timm
    from timm.data import create_transform, resolve_model_data_config

    name = f"timm/{variant}"
    if not timm.is_model(variant.split(".")[0]):
        close = timm.list_models(f"*{variant.split('.')[0][:6]}*")[:5]
        hint = f" Close matches: {', '.join(close)}." if close else ""
        raise ValueError(f"encoder {name!r}: timm has no model {variant!r}.{hint} `timm.list_models()` lists them.")
    kwargs: dict[str, Any] = {"pretrained": pretrained, "num_classes": 0}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = _create(timm, variant, kwargs, img_size)
        except Exception as exc:
            if not pretrained:
                raise
            raise RuntimeError(
                f"encoder {name!r}: could not load its pretrained weights ({type(exc).__name__}: {exc}). "
                f"They come from the Hugging Face hub: connect to the internet once (they are cached under "
                f"HF_HOME), or evaluate the random initialisation explicitly with '{name}[pretrained=false]' "
                f"(the record will say random-init)."
            ) from exc
    cfg = resolve_model_data_config(model)
    if img_size is not None:
        cfg["input_size"] = (cfg["input_size"][0], img_size, img_size)
        cfg["crop_pct"] = 1.0
    transform = create_transform(**cfg, is_training=False)
    tag = model.pretrained_cfg.get("hf_hub_id") or model.pretrained_cfg.get("tag") or variant
    weights = f"pretrained:{tag}" if pretrained else f"random-init(seed={seed})"
    pre = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    return TorchImageEncoder(model, model.num_features, transform, pre, weights, name)


def _create(timm: Any, variant: str, kwargs: dict[str, Any], img_size: int | None) -> torch.nn.Module:
    if img_size is not None:
        try:  # transformers take the input size as an argument; convnets do not need it
            return timm.create_model(variant, img_size=img_size, **kwargs)
        except TypeError:
            pass
    return timm.create_model(variant, **kwargs)


@hookimpl
def register_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            "pixels",
            "image",
            load=lambda **o: PixelsEncoder(**o),
            description="flattened raw pixels scaled to [0, 1] (the raw-input baseline)",
            defaults={"size": None, "mode": "auto"},
        ),
        EncoderSpec(
            "timm/",
            "image",
            load=load_timm,
            description="any timm model (pooled features, classifier removed); pretrained=false for random init",
            defaults={"pretrained": True, "img_size": None, "seed": 0},
            examples=("timm/resnet18", "timm/resnet50.a1_in1k", "timm/vit_small_patch16_224.augreg_in21k"),
        ),
    ]
