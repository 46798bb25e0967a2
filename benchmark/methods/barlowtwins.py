"""``barlowtwins``: Barlow Twins (Zbontar, Jing, Misra, LeCun & Deny, 2021, "Barlow Twins: Self-Supervised Learning
via Redundancy Reduction"). A plain plugin module.

Two augmented views go through the backbone and a projector (three linear layers, BN-ReLU after the first two, no
bias on the last, as the paper's); the loss drives the cross-correlation matrix of the two batch-normalised
embeddings (over the global batch) towards the identity: ``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` with
the paper's ``lambda = 5e-3`` (:func:`~benchmark.methods.recent_losses.barlow_twins_loss`). The paper's projector is
8192-8192-8192; the default here, 1024 wide, is scaled down for small backbones and CPU budgets (an option,
recorded like every other: ``barlowtwins[proj_dim=8192]``). The optimiser is the paper's: LARS, base lr 0.2 for
batch 256 (scaled linearly by the loop), weight decay 1.5e-6, then cosine; the warm-up is 10% of the steps (the
paper's 10 epochs of 1000 are too few for short budgets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from benchmark import checks
from benchmark.methods.recent_losses import barlow_twins_loss
from benchmark.methods.views import ImageViews, MultiView, check_recipe_options
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'barlowtwins'"


def projector(in_dim: int, dim: int, layers: int = 3) -> nn.Sequential:
    """The paper's projector: ``layers`` linear layers of width ``dim``, BN-ReLU after all but the last, which has
    no bias."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        last = i == layers - 1
        blocks.append(nn.Linear(in_dim if i == 0 else dim, dim, bias=not last))
        if not last:
            blocks += [nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
    return nn.Sequential(*blocks)


class BarlowTwinsObjective(nn.Module):
    """``objective(views, labels=None) -> loss``: both views in one forward pass."""

    def __init__(self, backbone: Backbone, proj_dim: int, proj_layers: int, lambd: float) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.projector = projector(backbone.embed_dim, proj_dim, proj_layers)
        self.lambd = lambd

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        z1, z2 = self.projector(self.encoder.encode(torch.cat(views[:2]))).chunk(2)
        return barlow_twins_loss(z1, z2, self.lambd)


def build(backbone: Backbone, lambd: float = 5e-3, proj_dim: int = 1024, proj_layers: int = 3, lr: float = 0.2,
          weight_decay: float = 1.5e-6, warmup_fraction: float = 0.1, batch_size: int = 128, crop_min: float = 0.2,
          color_jitter: float = 0.4, hflip: bool = False, blur: bool = False) -> BuiltMethod:
    """Barlow Twins around ``backbone``. ``lr`` is LARS's base rate for a batch of 256."""
    validate(dict(lambd=lambd, proj_dim=proj_dim, proj_layers=proj_layers, lr=lr, weight_decay=weight_decay,
                  warmup_fraction=warmup_fraction, batch_size=batch_size, crop_min=crop_min,
                  color_jitter=color_jitter, hflip=hflip, blur=blur))
    augment = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=color_jitter,
                         grayscale_p=0.2, blur=blur)
    defaults = TrainDefaults(optimizer="lars", lr=lr, reference_batch=256, weight_decay=weight_decay,
                             momentum=0.9, warmup_fraction=warmup_fraction, batch_size=batch_size)
    objective = BarlowTwinsObjective(backbone, proj_dim, proj_layers, lambd)
    return BuiltMethod(objective, MultiView(augment, augment), defaults)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values Barlow Twins cannot use (checked at plan time and by ``build``)."""
    checks.need_number(OWNER, "lambd", options["lambd"], ge=0)
    checks.need_int(OWNER, "proj_dim", options["proj_dim"], low=1)
    checks.need_int(OWNER, "proj_layers", options["proj_layers"], low=1)
    checks.need_number(OWNER, "warmup_fraction", options["warmup_fraction"], ge=0, lt=1)
    check_recipe_options(OWNER, options)
