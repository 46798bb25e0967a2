"""``autoencoder``: the classic unsupervised baseline (Hinton & Salakhutdinov, 2006, "Reducing the
Dimensionality of Data with Neural Networks"; convolutional decoder as in Masci et al., 2011, "Stacked
Convolutional Auto-Encoders"). A plain plugin module: the template for a reconstruction method.

The backbone encodes one lightly cropped view (crop area 0.8-1, no colour changes) to its ``embed_dim`` vector;
a small decoder (a linear layer to a coarse grid, then transposed convolutions that double the resolution, each
followed by BN-ReLU, and a 3x3 convolution to the image's channels) reconstructs that same normalised view, and
the loss is the pixel-wise mean squared error. Recipe: AdamW lr 1e-3 for batch 128, weight decay 1e-4, cosine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark import checks
from benchmark.methods.views import ImageViews, MultiView, check_recipe_options
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'autoencoder'"


class Decoder(nn.Module):
    """``(B, embed_dim) -> (B, C, H, W)``: linear to a grid of about 4x4 (``width`` channels), then transposed
    convolutions doubling the size (halving the channels, at least 16) up to H x W, cropped exactly."""

    def __init__(self, embed_dim: int, input_size: tuple[int, int, int], width: int) -> None:
        super().__init__()
        channels, height, w = input_size
        self.out_size = (height, w)
        stages = max(0, int(math.log2(max(1, min(height, w) // 4))))
        self.grid = (math.ceil(height / 2 ** stages), math.ceil(w / 2 ** stages))
        self.width = width
        self.linear = nn.Linear(embed_dim, width * self.grid[0] * self.grid[1])
        blocks: list[nn.Module] = [nn.ReLU(inplace=True)]
        c = width
        for _ in range(stages):
            nxt = max(16, c // 2)
            blocks += [nn.ConvTranspose2d(c, nxt, 4, stride=2, padding=1), nn.BatchNorm2d(nxt), nn.ReLU(inplace=True)]
            c = nxt
        blocks.append(nn.Conv2d(c, channels, 3, padding=1))
        self.body = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.linear(z).view(z.shape[0], self.width, *self.grid)
        height, width = self.out_size
        return self.body(x)[..., :height, :width]


class AutoencoderObjective(nn.Module):
    """``objective(views, labels=None) -> loss``: MSE between the first view and its reconstruction."""

    def __init__(self, backbone: Backbone, decoder_width: int) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.decoder = Decoder(backbone.embed_dim, backbone.input_size, decoder_width)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        x = views[0]
        return F.mse_loss(self.decoder(self.encoder.encode(x)), x)


def build(backbone: Backbone, decoder_width: int = 128, lr: float = 1e-3, weight_decay: float = 1e-4,
          batch_size: int = 128, crop_min: float = 0.8, hflip: bool = False) -> BuiltMethod:
    """An autoencoder around ``backbone``. ``lr`` is AdamW's for a batch of 128."""
    validate(dict(decoder_width=decoder_width, lr=lr, weight_decay=weight_decay, batch_size=batch_size,
                  crop_min=crop_min, hflip=hflip))
    view = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=0.0, grayscale_p=0.0)
    defaults = TrainDefaults(optimizer="adamw", lr=lr, reference_batch=128, weight_decay=weight_decay,
                             warmup_fraction=0.0, batch_size=batch_size)
    return BuiltMethod(AutoencoderObjective(backbone, decoder_width), MultiView(view), defaults)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values the autoencoder cannot use (checked at plan time and by ``build``)."""
    checks.need_int(OWNER, "decoder_width", options["decoder_width"], low=1)
    check_recipe_options(OWNER, options)
