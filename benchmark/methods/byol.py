"""``byol``: BYOL (Grill et al., 2020, "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning").
A plain plugin module: the template for a method with a momentum (EMA) target.

The online network (backbone, projector, predictor) predicts the target network's projection of the other view;
the target (a copy of backbone + projector) is never optimised: it has ``requires_grad=False`` and is listed in
``momentum_pairs``, so the core's loop sets ``target = tau * target + (1 - tau) * online`` after every step
(tau rising from ``tau`` to 1 on a cosine schedule, as in the paper). The target sits in the objective module
(so it moves with it and is checkpointed) and runs in the same train/eval mode as the online network, without
gradients. Heads as lightly's CIFAR-10 benchmark: projector 1024 hidden -> 256, predictor 256 -> 1024 -> 256;
its SGD recipe: lr 0.06 for batch 128, momentum 0.9, weight decay 5e-4, cosine without warm-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from benchmark import checks
from benchmark.methods.losses import byol_loss
from benchmark.methods.views import ImageViews, MultiView, check_recipe_options
from benchmark.runtime.training import frozen_copy
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'byol'"


def mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """BYOL's projector / predictor: Linear-BN-ReLU-Linear."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out_dim))


class BYOLObjective(nn.Module):
    """``objective(views, labels=None) -> loss``: online predictions of both views against the target's
    projections of the other view."""

    def __init__(self, backbone: Backbone, proj_hidden: int, proj_dim: int, pred_hidden: int) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.projector = mlp(backbone.embed_dim, proj_hidden, proj_dim)
        self.predictor = mlp(proj_dim, pred_hidden, proj_dim)
        self.target_encoder = frozen_copy(self.encoder)
        self.target_projector = frozen_copy(self.projector)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.cat(views[:2])
        p1, p2 = self.predictor(self.projector(self.encoder.encode(x))).chunk(2)
        with torch.no_grad():
            t1, t2 = self.target_projector(self.target_encoder.encode(x)).chunk(2)
        return byol_loss(p1, p2, t1, t2)


def build(backbone: Backbone, tau: float = 0.99, proj_hidden: int = 1024, proj_dim: int = 256,
          pred_hidden: int = 1024, lr: float = 0.06, weight_decay: float = 5e-4, batch_size: int = 128,
          crop_min: float = 0.2, color_jitter: float = 0.4, hflip: bool = False, blur: bool = False) -> BuiltMethod:
    """BYOL around ``backbone``. ``tau``: the EMA rate at step 0; ``lr`` is for a batch of 128."""
    validate(dict(tau=tau, proj_hidden=proj_hidden, proj_dim=proj_dim, pred_hidden=pred_hidden, lr=lr,
                  weight_decay=weight_decay, batch_size=batch_size, crop_min=crop_min,
                  color_jitter=color_jitter, hflip=hflip, blur=blur))
    augment = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=color_jitter,
                         grayscale_p=0.2, blur=blur)
    defaults = TrainDefaults(optimizer="sgd", lr=lr, reference_batch=128, weight_decay=weight_decay,
                             momentum=0.9, warmup_fraction=0.0, batch_size=batch_size, tau=tau)
    objective = BYOLObjective(backbone, proj_hidden, proj_dim, pred_hidden)
    pairs = ((objective.encoder, objective.target_encoder), (objective.projector, objective.target_projector))
    return BuiltMethod(objective, MultiView(augment, augment), defaults, momentum_pairs=pairs)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values BYOL cannot use (checked at plan time and by ``build``)."""
    checks.need_number(OWNER, "tau", options["tau"], ge=0, lt=1)
    for name in ("proj_hidden", "proj_dim", "pred_hidden"):
        checks.need_int(OWNER, name, options[name], low=1)
    check_recipe_options(OWNER, options)
