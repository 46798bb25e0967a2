"""``mae``: masked autoencoders (He, Chen, Xie, Li, Dollar & Girshick, 2022, "Masked Autoencoders Are Scalable
Vision Learners"). A plain plugin module for ViT backbones (timm ``vit_*``), and the template for a method that
needs a ViT's patch tokens (:mod:`benchmark.methods.vit`).

Each image (one lightly cropped view: area 0.2-1, as the paper) is cut into patches; a random 75% are masked per
image (a fresh permutation from torch's RNG each step). The encoder sees only the visible patches, with their
positional embedding (so it costs about a quarter of a full forward pass); a light decoder (a linear map to
``decoder_dim``, a learned mask token, a fixed 2-D sine-cosine positional embedding as the paper's,
``decoder_depth`` transformer blocks, a linear map to pixels) predicts every patch, and the loss is the mean squared error on the masked patches only, against
pixels normalised per patch (``norm_pix_loss``, :func:`~benchmark.methods.recent_losses.mae_loss`). The decoder is
scaled down for small backbones (128 wide, 2 blocks; the paper's is 512 wide, 8 blocks). Recipe: AdamW with betas
(0.9, 0.95) as the paper, base lr 1.5e-4 for batch 256, weight decay 0.05, 5% warm-up (40 of 800 epochs), then
cosine.
A backbone without patch tokens, or a patch size that does not divide the image size, is a one-line OptionError.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from benchmark import checks
from benchmark.methods.recent_losses import mae_loss, patchify
from benchmark.methods.views import ImageViews, MultiView, check_recipe_options
from benchmark.methods.vit import encode_visible, need_vit, patch_size
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'mae'"


def random_masking(batch: int, patches: int, mask_ratio: float, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking: (keep (B, K) indices of the visible patches, in shuffled order; restore
    (B, L), the permutation that puts [visible, masked] back in patch order; mask (B, L), 1 on masked patches)."""
    keep_count = max(1, int(patches * (1 - mask_ratio)))
    shuffle = torch.argsort(torch.rand(batch, patches, device=device), dim=1)
    restore = torch.argsort(shuffle, dim=1)
    mask = torch.ones(batch, patches, device=device)
    mask[:, :keep_count] = 0
    return shuffle[:, :keep_count], restore, torch.gather(mask, 1, restore)


def sincos_2d(dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """The fixed 2-D sine-cosine positional embedding of MAE's decoder, (grid_h * grid_w, dim), row-major over
    the patch grid: the first half of the channels encodes the patch's column, the second half its row, each as
    ``[sin(pos * w), cos(pos * w)]`` with ``w_i = 10000 ** (-i / (dim / 4))``. ``dim`` must be a multiple of 4."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))

    def one_axis(pos: torch.Tensor) -> torch.Tensor:
        angles = pos.reshape(-1, 1).double() * omega
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    rows, cols = torch.meshgrid(torch.arange(grid_h), torch.arange(grid_w), indexing="ij")
    return torch.cat([one_axis(cols), one_axis(rows)], dim=1).float()


class MAEDecoder(nn.Module):
    """Visible tokens (B, prefix + K, D) -> pixel predictions (B, L, p * p * C) for every patch."""

    def __init__(self, embed_dim: int, grid: tuple[int, int], prefix: int, pixels: int, dim: int, depth: int,
                 heads: int) -> None:
        super().__init__()
        from timm.models.vision_transformer import Block

        self.prefix = prefix
        self.embed = nn.Linear(embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed: torch.Tensor  # fixed, not trained (zeros for the class token, as MAE)
        self.register_buffer("pos_embed", torch.cat([torch.zeros(prefix, dim), sincos_2d(dim, *grid)]).unsqueeze(0))
        nn.init.normal_(self.mask_token, std=0.02)
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, pixels)

    def forward(self, tokens: torch.Tensor, restore: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)
        visible = x[:, self.prefix:]
        masked = self.mask_token.expand(x.shape[0], restore.shape[1] - visible.shape[1], -1)
        patches = torch.gather(torch.cat([visible, masked], dim=1), 1,
                               restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :self.prefix], patches], dim=1) + self.pos_embed
        return self.pred(self.norm(self.blocks(x)))[:, self.prefix:]


class MAEObjective(nn.Module):
    """``objective(views, labels=None) -> loss``: reconstruct the masked patches of the first view."""

    def __init__(self, backbone: Backbone, mask_ratio: float, decoder: tuple[int, int, int], norm_pix: bool) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        vit = need_vit(OWNER, backbone)
        self._vit = [vit]  # a module inside self.encoder: kept out of the submodules, so it is not saved twice
        self.patch = patch_size(vit)[0]
        _, height, width = backbone.input_size
        grid = (height // self.patch, width // self.patch)
        pixels = self.patch * self.patch * backbone.input_size[0]
        self.decoder = MAEDecoder(backbone.embed_dim, grid, int(vit.num_prefix_tokens), pixels, *decoder)
        self.mask_ratio, self.norm_pix = mask_ratio, norm_pix

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        x = views[0]
        target = patchify(x, self.patch)
        keep, restore, mask = random_masking(x.shape[0], target.shape[1], self.mask_ratio, x.device)
        pred = self.decoder(encode_visible(self._vit[0], x, keep), restore)
        return mae_loss(pred, target, mask, self.norm_pix)


def build(backbone: Backbone, mask_ratio: float = 0.75, decoder_dim: int = 128, decoder_depth: int = 2,
          decoder_heads: int = 4, norm_pix: bool = True, lr: float = 1.5e-4, weight_decay: float = 0.05,
          warmup_fraction: float = 0.05, batch_size: int = 128, crop_min: float = 0.2, hflip: bool = False
          ) -> BuiltMethod:
    """MAE around a ViT ``backbone``. ``lr`` is AdamW's for a batch of 256."""
    validate(dict(mask_ratio=mask_ratio, decoder_dim=decoder_dim, decoder_depth=decoder_depth,
                  decoder_heads=decoder_heads, norm_pix=norm_pix, lr=lr, weight_decay=weight_decay,
                  warmup_fraction=warmup_fraction, batch_size=batch_size, crop_min=crop_min, hflip=hflip))
    view = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=0.0, grayscale_p=0.0)
    defaults = TrainDefaults(optimizer="adamw", lr=lr, reference_batch=256, weight_decay=weight_decay,
                             warmup_fraction=warmup_fraction, batch_size=batch_size, betas=(0.9, 0.95))
    objective = MAEObjective(backbone, mask_ratio, (decoder_dim, decoder_depth, decoder_heads), norm_pix)
    return BuiltMethod(objective, MultiView(view), defaults)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values MAE cannot use (checked at plan time and by ``build``)."""
    checks.need_number(OWNER, "mask_ratio", options["mask_ratio"], ge=0, lt=1)
    for name in ("decoder_dim", "decoder_depth", "decoder_heads"):
        checks.need_int(OWNER, name, options[name], low=1)
    if options["decoder_dim"] % options["decoder_heads"]:
        raise checks.bad_option(OWNER, "decoder_heads", f"a divisor of decoder_dim ({options['decoder_dim']})",
                                options["decoder_heads"])
    if options["decoder_dim"] % 4:
        raise checks.bad_option(OWNER, "decoder_dim", "a multiple of 4 (its sine-cosine position embedding)",
                                options["decoder_dim"])
    checks.need_bool(OWNER, "norm_pix", options["norm_pix"])
    checks.need_number(OWNER, "warmup_fraction", options["warmup_fraction"], ge=0, lt=1)
    check_recipe_options(OWNER, options)
