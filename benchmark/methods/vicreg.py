"""``vicreg``: VICReg (Bardes, Ponce & LeCun, 2022, "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning"). A plain plugin module.

Two augmented views go through the backbone and an expander (three linear layers, BN-ReLU between them); the
loss keeps the two embeddings close (invariance, 25), every dimension's standard deviation above 1 (variance,
25) and the dimensions decorrelated (covariance, 1). The paper's expander is 8192-8192-8192 and lightly's
ImageNet benchmark uses 8192; the default here, 512, is sized for CPU budgets and small backbones (it is an
option, recorded like every other: ``vicreg[expander_dim=2048]``). The optimiser is the paper's: LARS, base lr
0.2 for batch 256 (scaled linearly by the loop), weight decay 1e-6, 10% linear warm-up then cosine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from benchmark import checks
from benchmark.methods.losses import vicreg_loss
from benchmark.methods.views import ImageViews, MultiView, check_view_options
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'vicreg'"


def expander(in_dim: int, dim: int, layers: int = 3) -> nn.Sequential:
    """VICReg's expander: ``layers`` linear layers of width ``dim``, BN-ReLU after all but the last."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        blocks.append(nn.Linear(in_dim if i == 0 else dim, dim))
        if i < layers - 1:
            blocks += [nn.BatchNorm1d(dim), nn.ReLU(inplace=True)]
    return nn.Sequential(*blocks)


class VICRegObjective(nn.Module):
    """``objective(views, labels=None) -> loss``: both views in one forward pass."""

    def __init__(self, backbone: Backbone, expander_dim: int, expander_layers: int, invariance: float,
                 variance: float, covariance: float) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.expander = expander(backbone.embed_dim, expander_dim, expander_layers)
        self.weights = (invariance, variance, covariance)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        z1, z2 = self.expander(self.encoder.encode(torch.cat(views[:2]))).chunk(2)
        invariance, variance, covariance = self.weights
        return vicreg_loss(z1, z2, invariance, variance, covariance)


def build(backbone: Backbone, expander_dim: int = 512, expander_layers: int = 3, invariance: float = 25.0,
          variance: float = 25.0, covariance: float = 1.0, lr: float = 0.2, weight_decay: float = 1e-6,
          warmup_fraction: float = 0.1, batch_size: int = 128, crop_min: float = 0.2, color_jitter: float = 0.4,
          hflip: bool = False, blur: bool = False) -> BuiltMethod:
    """VICReg around ``backbone``. ``lr`` is LARS's base rate for a batch of 256."""
    validate(dict(expander_dim=expander_dim, expander_layers=expander_layers, invariance=invariance,
                  variance=variance, covariance=covariance, lr=lr, weight_decay=weight_decay,
                  warmup_fraction=warmup_fraction, batch_size=batch_size, crop_min=crop_min,
                  color_jitter=color_jitter, hflip=hflip, blur=blur))
    augment = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=color_jitter,
                         grayscale_p=0.2, blur=blur)
    defaults = TrainDefaults(optimizer="lars", lr=lr, reference_batch=256, weight_decay=weight_decay,
                             momentum=0.9, warmup_fraction=warmup_fraction, batch_size=batch_size)
    objective = VICRegObjective(backbone, expander_dim, expander_layers, invariance, variance, covariance)
    return BuiltMethod(objective, MultiView(augment, augment), defaults)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values VICReg cannot use (checked at plan time and by ``build``)."""
    checks.need_int(OWNER, "expander_dim", options["expander_dim"], low=1)
    checks.need_int(OWNER, "expander_layers", options["expander_layers"], low=1)
    for name in ("invariance", "variance", "covariance", "weight_decay"):
        checks.need_number(OWNER, name, options[name], ge=0)
    checks.need_number(OWNER, "lr", options["lr"], gt=0)
    checks.need_number(OWNER, "warmup_fraction", options["warmup_fraction"], ge=0, lt=1)
    checks.need_int(OWNER, "batch_size", options["batch_size"], low=2)
    check_view_options(OWNER, options)
