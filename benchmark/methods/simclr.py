"""``simclr``: SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual
Representations"). A plain plugin module, and a template for writing a method.

Two augmented views of each image go through the backbone and a projection head (Linear-BN-ReLU-Linear, 128
out); the NT-Xent loss pulls each view towards its twin and away from every other view of the global batch.
The recipe is lightly's CIFAR-10 benchmark: temperature 0.5, SGD lr 0.06 for batch 128 (scaled linearly by the
loop), momentum 0.9, weight decay 5e-4, cosine schedule without warm-up; colour jitter 0.4 (SimCLR strength
0.5), random grayscale 0.2, no blur at small sizes. Flips default off (digits).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from benchmark import checks
from benchmark.methods.losses import nt_xent
from benchmark.methods.views import ImageViews, MultiView, check_recipe_options
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'simclr'"


class SimCLRObjective(nn.Module):
    """``objective(views, labels=None) -> loss``: both views in one forward pass (BatchNorm sees 2N images)."""

    def __init__(self, backbone: Backbone, proj_hidden: int, proj_dim: int, temperature: float) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.projector = nn.Sequential(
            nn.Linear(backbone.embed_dim, proj_hidden), nn.BatchNorm1d(proj_hidden), nn.ReLU(inplace=True),
            nn.Linear(proj_hidden, proj_dim),
        )
        self.temperature = temperature

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        z1, z2 = self.projector(self.encoder.encode(torch.cat(views))).chunk(2)
        return nt_xent(z1, z2, self.temperature)


def build(backbone: Backbone, temperature: float = 0.5, proj_hidden: int = 512, proj_dim: int = 128,
          lr: float = 0.06, weight_decay: float = 5e-4, batch_size: int = 128, crop_min: float = 0.2,
          color_jitter: float = 0.4, hflip: bool = False, blur: bool = False) -> BuiltMethod:
    """SimCLR around ``backbone``. ``lr`` is for a batch of 128 (the loop scales it to the global batch)."""
    validate(dict(temperature=temperature, proj_hidden=proj_hidden, proj_dim=proj_dim, lr=lr,
                  weight_decay=weight_decay, batch_size=batch_size, crop_min=crop_min,
                  color_jitter=color_jitter, hflip=hflip, blur=blur))
    augment = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=color_jitter,
                         grayscale_p=0.2, blur=blur)
    defaults = TrainDefaults(optimizer="sgd", lr=lr, reference_batch=128, weight_decay=weight_decay,
                             momentum=0.9, warmup_fraction=0.0, batch_size=batch_size)
    objective = SimCLRObjective(backbone, proj_hidden, proj_dim, temperature)
    return BuiltMethod(objective, MultiView(augment, augment), defaults)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values SimCLR cannot use (checked at plan time and by ``build``)."""
    checks.need_number(OWNER, "temperature", options["temperature"], gt=0)
    checks.need_int(OWNER, "proj_hidden", options["proj_hidden"], low=1)
    checks.need_int(OWNER, "proj_dim", options["proj_dim"], low=1)
    check_recipe_options(OWNER, options)
