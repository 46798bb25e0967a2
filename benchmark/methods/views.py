"""Augmented views of raw images for pretraining methods: the pieces a method's ``views(sample)`` is made of.

:class:`ImageViews` is the SimCLR augmentation (Chen et al., 2020, "A Simple Framework for Contrastive Learning of
Visual Representations", appendix A) as lightly's CIFAR-10 benchmark uses it: a random resized crop to the
backbone's input size, an optional horizontal flip, colour jitter (p=0.8) and random grayscale for colour
sources, an optional Gaussian blur (never below 64 px: it destroys small images), then the backbone's
normalisation. Grayscale sources (digits) are repeated to the backbone's channel count; colour sources are
converted to gray for one-channel backbones. Flips default off: they change the meaning of digits and text.

Everything draws from ``torch``'s RNG only (torchvision.transforms.v2), so views are reproducible under
``torch.manual_seed`` and the data loader's per-worker seeding, and every object here pickles (the loop ships
``method.views`` to data-loader workers). :func:`plain_view` is the unaugmented view (resize + normalise);
:class:`MultiView` bundles one transform per view.

Views of one sample may differ in size between positions (multi-crop: DINO's global and local crops), never
between samples at one position: the loader stacks position ``i`` of every sample into one (B, C, H_i, W_i) batch,
and :func:`by_resolution` groups the positions of one size so an objective runs one forward pass per resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from benchmark import checks
from benchmark.specs import Backbone

#: PIL modes treated as one-channel sources (colour jitter and random grayscale are skipped for them).
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
#: Below this size (the smaller of H and W) Gaussian blur is never applied, even when asked for.
MIN_BLUR_SIZE = 64

__all__ = ["GRAY_MODES", "MIN_BLUR_SIZE", "ImageViews", "MultiView", "by_resolution", "check_recipe_options",
           "check_view_options", "plain_view"]


class ImageViews:
    """One random view of an image: ``ImageViews(backbone)(pil_image) -> float32 tensor backbone.input_size``.

    ``crop_scale``: the area range of the random resized crop (None: a plain resize, no crop). ``hflip``: random
    horizontal flips (p=0.5). ``color_jitter``: the jitter strength ``s`` applied with p=0.8 as
    ``ColorJitter(s, s, s, s / 4)`` (0.4 is SimCLR's strength 0.5, lightly's CIFAR-10 setting; 0: off).
    ``grayscale_p``: probability of random grayscale. Both are skipped for grayscale sources. ``blur``: Gaussian
    blur with p=0.5 (kernel 10% of the size, sigma 0.1-2), only at sizes >= :data:`MIN_BLUR_SIZE`.
    ``size``: the output size (an int for square views) instead of the backbone's input size (multi-crop's
    smaller local crops). Only numbers are kept from ``backbone``, never its module, so the object is small to
    pickle.
    """

    def __init__(self, backbone: Backbone, *, crop_scale: tuple[float, float] | None = (0.2, 1.0),
                 hflip: bool = False, color_jitter: float = 0.4, grayscale_p: float = 0.2, blur: bool = False,
                 size: int | tuple[int, int] | None = None) -> None:
        channels, height, width = (int(v) for v in backbone.input_size)
        if size is not None:
            height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        self.channels, self.size = channels, (height, width)
        self.mean = _per_channel(backbone.mean, channels, "mean")
        self.std = _per_channel(backbone.std, channels, "std")
        geometry: list[Any] = [v2.RandomResizedCrop(self.size, scale=tuple(crop_scale), antialias=True)
                               if crop_scale is not None else v2.Resize(self.size, antialias=True)]
        if hflip:
            geometry.append(v2.RandomHorizontalFlip())
        colour: list[Any] = []
        if color_jitter > 0:
            s = float(color_jitter)
            colour.append(v2.RandomApply([v2.ColorJitter(s, s, s, min(s / 4, 0.5))], p=0.8))
        if grayscale_p > 0:
            colour.append(v2.RandomGrayscale(p=grayscale_p))
        tail: list[Any] = []
        if blur and min(self.size) >= MIN_BLUR_SIZE:
            kernel = max(3, int(0.1 * min(self.size)) // 2 * 2 + 1)
            tail.append(v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5))
        self.gray_pipeline = v2.Compose([*geometry, *tail])
        self.rgb_pipeline = v2.Compose([*geometry, *colour, *tail])

    def __call__(self, sample: Any) -> torch.Tensor:
        image, gray = _to_uint8(sample)
        x = (self.gray_pipeline if gray else self.rgb_pipeline)(image)
        x = TF.to_dtype(x, torch.float32, scale=True)
        if x.shape[0] != self.channels:
            x = x.expand(self.channels, -1, -1) if x.shape[0] == 1 else TF.rgb_to_grayscale(x[:3], 1)
            if x.shape[0] != self.channels:
                raise ValueError(f"cannot turn a {x.shape[0]}-channel image into {self.channels} channels")
        return ((x - self.mean) / self.std).contiguous()

    def __repr__(self) -> str:
        steps = ", ".join(type(t).__name__ for t in self.rgb_pipeline.transforms)
        return f"ImageViews(size={self.size}, channels={self.channels}, steps=[{steps}])"


class MultiView:
    """``MultiView(t1, t2, ...)(sample) -> [t1(sample), t2(sample), ...]``: a method's ``views``, picklable."""

    def __init__(self, *transforms: ImageViews) -> None:
        if not transforms:
            raise ValueError("MultiView needs at least one transform")
        self.transforms = transforms

    def __call__(self, sample: Any) -> list[torch.Tensor]:
        return [t(sample) for t in self.transforms]


def by_resolution(views: Sequence[torch.Tensor]) -> list[tuple[list[int], torch.Tensor]]:
    """The view batches grouped by size, for one forward pass per resolution: ``[(positions, batch), ...]`` with
    ``batch`` the views at ``positions`` concatenated along dim 0 (in that order), groups in order of first
    appearance. ``[g1, g2, l1, l2]`` (two 32 px, two 16 px) gives ``[([0, 1], cat(g1, g2)), ([2, 3], cat(l1, l2))]``."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(views):
        groups.setdefault(tuple(v.shape[1:]), []).append(i)
    return [(positions, torch.cat([views[i] for i in positions])) for positions in groups.values()]


def plain_view(backbone: Backbone) -> ImageViews:
    """The unaugmented view: resize to the backbone's input size and normalise (targets, evaluation)."""
    return ImageViews(backbone, crop_scale=None, color_jitter=0.0, grayscale_p=0.0)


def check_recipe_options(owner: str, options: Mapping[str, Any]) -> None:
    """OptionError for the recipe options every built-in method exposes: ``lr`` > 0, ``weight_decay`` >= 0,
    ``batch_size`` >= 2, and the view options (:func:`check_view_options`)."""
    checks.need_number(owner, "lr", options["lr"], gt=0)
    checks.need_number(owner, "weight_decay", options["weight_decay"], ge=0)
    checks.need_int(owner, "batch_size", options["batch_size"], low=2)
    check_view_options(owner, options)


def check_view_options(owner: str, options: Mapping[str, Any]) -> None:
    """OptionError for the view options a method exposes (``crop_min``, ``hflip``, ``color_jitter``, ``blur``;
    those absent are not checked)."""
    if "crop_min" in options:
        checks.need_number(owner, "crop_min", options["crop_min"], gt=0, le=1)
    for name in ("hflip", "blur"):
        if name in options:
            checks.need_bool(owner, name, options[name])
    if "color_jitter" in options:
        checks.need_number(owner, "color_jitter", options["color_jitter"], ge=0, le=1)


def _per_channel(values: Sequence[float], channels: int, what: str) -> torch.Tensor:
    """The backbone's mean or std as a (C, 1, 1) tensor: one value is repeated, three average to one channel."""
    vals = [float(v) for v in values]
    if len(vals) == 1 or (channels == 1 and len(vals) == 3):
        vals = [sum(vals) / len(vals)] * channels
    if len(vals) != channels:
        raise ValueError(f"backbone {what} has {len(vals)} values for {channels} channels")
    return torch.tensor(vals, dtype=torch.float32).view(channels, 1, 1)


def _to_uint8(sample: Any) -> tuple[torch.Tensor, bool]:
    """(uint8 image tensor (C, H, W), whether the source is grayscale) for a PIL image, array or tensor."""
    if isinstance(sample, Image.Image):
        gray = sample.mode in GRAY_MODES
        sample = sample.convert("L" if gray else "RGB")
    image = TF.to_image(sample)
    if image.dtype != torch.uint8:
        image = TF.to_dtype(image, torch.uint8, scale=True)
    if image.shape[0] == 4:  # RGBA tensors: drop alpha
        image = image[:3]
    return image.as_subclass(torch.Tensor), image.shape[0] == 1
