"""``timm/<model>``: every timm architecture as an image encoder (pooled features, classifier removed). A plain
plugin module."""

from __future__ import annotations

from typing import Any

import torch

from benchmark.encoders.base import TorchImageEncoder
from benchmark.hookspecs import hookimpl
from benchmark.specs import EncoderSpec


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
            "timm/",
            "image",
            load=load_timm,
            description="any timm model (pooled features, classifier removed); pretrained=false for random init",
            defaults={"pretrained": True, "img_size": None, "seed": 0},
            examples=("timm/resnet18", "timm/resnet50.a1_in1k", "timm/vit_small_patch16_224.augreg_in21k"),
        ),
    ]
