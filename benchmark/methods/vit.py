"""A ViT backbone's patch tokens, for methods that need more than the pooled embedding (MAE's masked encoder,
multi-crop at several resolutions).

Works on timm ``VisionTransformer`` models (``timm/vit_*``, ``deit_*``, ...: anything with ``patch_embed``,
``blocks``, ``norm`` and ``num_prefix_tokens``), reached through ``backbone.encoder.backbone`` as the timm
encoder holds them. :func:`vit_of` is None for other backbones; :func:`need_vit` turns that into the one-line
:class:`~benchmark.errors.OptionError` a method gives for a backbone without patch tokens, and checks that the
patch size divides the input size. :func:`encode_visible` runs the encoder on a subset of the patch tokens (the
positional embedding added first, so a token keeps its place); :func:`allow_any_size` lets the ViT take inputs of
other sizes (its positional embedding resampled, as DINO does for local crops).
"""

from __future__ import annotations

from typing import Any

import torch

from benchmark.errors import OptionError
from benchmark.specs import Backbone

__all__ = ["allow_any_size", "encode_visible", "need_vit", "patch_size", "vit_of"]

_VIT_PARTS = ("patch_embed", "blocks", "norm", "num_prefix_tokens", "_pos_embed")


def vit_of(backbone: Backbone) -> Any | None:
    """The timm VisionTransformer inside ``backbone`` (or the backbone's encoder itself), None if it has none."""
    for module in (getattr(backbone.encoder, "backbone", None), backbone.encoder):
        if module is not None and all(hasattr(module, part) for part in _VIT_PARTS):
            return module
    return None


def patch_size(vit: Any) -> tuple[int, int]:
    """The (height, width) of one patch."""
    size = vit.patch_embed.patch_size
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def backbone_label(backbone: Backbone) -> str:
    resolved = backbone.resolved
    return str(getattr(resolved, "label", None) or getattr(backbone.encoder, "name", type(backbone.encoder).__name__))


def need_vit(owner: str, backbone: Backbone, sizes: tuple[int, ...] = ()) -> Any:
    """The backbone's ViT; OptionError (one line) when it has no patch tokens or when its patch size does not divide
    the input size (or any of ``sizes``, e.g. local crops)."""
    vit = vit_of(backbone)
    if vit is None:
        raise OptionError(f"{owner} needs a ViT backbone with patch tokens; --backbone {backbone_label(backbone)} has "
                          "none (use e.g. 'timm/vit_tiny_patch16_224[pretrained=false,img_size=32,patch_size=4]')")
    check_patch_grid(owner, backbone, vit, sizes)
    return vit


def check_patch_grid(owner: str, backbone: Backbone, vit: Any, sizes: tuple[int, ...] = ()) -> None:
    """OptionError when the patch size does not divide the backbone's input size or one of ``sizes``."""
    ph, pw = patch_size(vit)
    _, height, width = backbone.input_size
    for h, w, what in ((height, width, "the input size"), *((s, s, f"the crop size {s}") for s in sizes)):
        if h % ph or w % pw:
            raise OptionError(f"{owner}: the patch size {ph}x{pw} of --backbone {backbone_label(backbone)} does not "
                              f"divide {what} {h}x{w}; choose img_size and patch_size so that it does "
                              "(e.g. img_size=32,patch_size=4)")


def encode_visible(vit: Any, images: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """The ViT's normalised output tokens (B, prefix + K, D) for the patches ``keep`` (B, K) (indices into the
    row-major patch grid; all patches when None): patch embedding, positional embedding (class and register tokens
    prepended), then only the kept patch tokens go through the blocks."""
    x = vit._pos_embed(vit.patch_embed(images))
    if keep is not None:
        prefix = int(vit.num_prefix_tokens)
        tokens = x[:, prefix:]
        kept = torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        x = torch.cat([x[:, :prefix], kept], dim=1)
    x = vit.norm_pre(x) if hasattr(vit, "norm_pre") else x
    return vit.norm(vit.blocks(x))


def allow_any_size(vit: Any) -> None:
    """Let ``vit`` take inputs of any size its patch size divides, resampling its positional embedding to the grid
    (timm's ``dynamic_img_size``), as DINO's local crops need. Inputs of the original size give the same outputs."""
    from timm.layers import Format

    vit.dynamic_img_size = True
    vit.patch_embed.strict_img_size = False
    vit.patch_embed.flatten = False
    vit.patch_embed.output_fmt = Format.NHWC
