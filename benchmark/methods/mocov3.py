"""``mocov3``: MoCo v3 (Chen, Xie & He, 2021, "An Empirical Study of Training Self-Supervised Vision
Transformers"). A plain plugin module, for ResNets and ViTs.

The query encoder (backbone, projector, predictor) and the key encoder (a momentum copy of backbone and projector,
in ``momentum_pairs``: the loop moves it by ``m`` rising from 0.99 to 1 on a cosine, the paper's schedule) see both
views; the loss is the symmetric InfoNCE ``ctr(q1, k2) + ctr(q2, k1)`` with its ``2 * tau`` factor, keys from every
rank (:func:`~benchmark.methods.recent_losses.mocov3_loss`). Heads as the paper's: Linear (no bias)-BN-ReLU
layers, the last followed by a BN without affine parameters (not in the predictor); a 2-layer projector for ResNets,
3-layer for ViTs, a 2-layer predictor; hidden width 1024 and output 256 here (the paper's hidden width, 4096, is
scaled down for small backbones; an option). Recipes (the paper's, by backbone kind; each an option): ResNet: LARS,
base lr 0.6 for batch 256, weight decay 1e-6, tau 1.0, 10% warm-up; ViT: AdamW, base lr 1.5e-4 for batch 256,
weight decay 0.1, tau 0.2, 40/300 epochs of warm-up, and the patch embedding frozen at its random init (the
paper's fix for instability). AdamW keeps torch's betas (0.9, 0.999), as the official code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from benchmark import checks
from benchmark.methods.recent_losses import mocov3_loss
from benchmark.methods.views import ImageViews, MultiView, check_view_options
from benchmark.methods.vit import check_patch_grid, vit_of
from benchmark.runtime.training import frozen_copy
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'mocov3'"
#: The paper's recipe per backbone kind: optimizer, base lr (batch 256), weight decay, temperature, warm-up share.
RECIPES: dict[str, dict[str, Any]] = {
    "resnet": {"optimizer": "lars", "lr": 0.6, "weight_decay": 1e-6, "temperature": 1.0, "warmup_fraction": 0.1},
    "vit": {"optimizer": "adamw", "lr": 1.5e-4, "weight_decay": 0.1, "temperature": 0.2, "warmup_fraction": 40 / 300},
}


def mlp(layers: int, in_dim: int, hidden: int, out_dim: int, last_bn: bool = True) -> nn.Sequential:
    """MoCo v3's ``_build_mlp``: Linear(no bias)-BN-ReLU ``layers - 1`` times, then Linear(no bias) and, with
    ``last_bn``, a BatchNorm without affine parameters."""
    blocks: list[nn.Module] = []
    for i in range(layers):
        d_in, d_out = in_dim if i == 0 else hidden, out_dim if i == layers - 1 else hidden
        blocks.append(nn.Linear(d_in, d_out, bias=False))
        if i < layers - 1:
            blocks += [nn.BatchNorm1d(d_out), nn.ReLU(inplace=True)]
        elif last_bn:
            blocks.append(nn.BatchNorm1d(d_out, affine=False))
    return nn.Sequential(*blocks)


class MoCoV3Objective(nn.Module):
    """``objective(views, labels=None) -> loss``: queries of both views against the keys of the other view."""

    def __init__(self, backbone: Backbone, proj_layers: int, hidden: int, dim: int, temperature: float) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.projector = mlp(proj_layers, backbone.embed_dim, hidden, dim)
        self.predictor = mlp(2, dim, hidden, dim, last_bn=False)
        self.key_encoder = frozen_copy(self.encoder)
        self.key_projector = frozen_copy(self.projector)
        self.temperature = temperature

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        x = torch.cat(views[:2])
        q1, q2 = self.predictor(self.projector(self.encoder.encode(x))).chunk(2)
        with torch.no_grad():
            k1, k2 = self.key_projector(self.key_encoder.encode(x)).chunk(2)
        return mocov3_loss(q1, q2, k1, k2, self.temperature)


def build(backbone: Backbone, temperature: float | None = None, tau: float = 0.99, hidden: int = 1024,
          dim: int = 256, proj_layers: int | None = None, lr: float | None = None, weight_decay: float | None = None,
          warmup_fraction: float | None = None, freeze_patch_embed: bool = True, batch_size: int = 128,
          crop_min: float = 0.2, color_jitter: float = 0.4, hflip: bool = False, blur: bool = False) -> BuiltMethod:
    """MoCo v3 around ``backbone``. Options left at None take the paper's value for the backbone's kind (ViT or
    ResNet, :data:`RECIPES`); ``lr`` is for a batch of 256; ``tau``: the key encoder's momentum at step 0."""
    validate(dict(temperature=temperature, tau=tau, hidden=hidden, dim=dim, proj_layers=proj_layers, lr=lr,
                  weight_decay=weight_decay, warmup_fraction=warmup_fraction, freeze_patch_embed=freeze_patch_embed,
                  batch_size=batch_size, crop_min=crop_min, color_jitter=color_jitter, hflip=hflip, blur=blur))
    vit = vit_of(backbone)
    kind = "vit" if vit is not None else "resnet"
    if vit is not None:
        check_patch_grid(OWNER, backbone, vit)
    given = {"lr": lr, "weight_decay": weight_decay, "temperature": temperature, "warmup_fraction": warmup_fraction}
    recipe = {**RECIPES[kind], **{k: v for k, v in given.items() if v is not None}}
    augment = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=color_jitter,
                         grayscale_p=0.2, blur=blur)
    defaults = TrainDefaults(optimizer=recipe["optimizer"], lr=recipe["lr"], reference_batch=256,
                             weight_decay=recipe["weight_decay"], momentum=0.9,
                             warmup_fraction=recipe["warmup_fraction"], batch_size=batch_size, tau=tau)
    layers = proj_layers if proj_layers is not None else (3 if kind == "vit" else 2)
    objective = MoCoV3Objective(backbone, layers, hidden, dim, recipe["temperature"])
    if vit is not None and freeze_patch_embed:
        for p in vit.patch_embed.parameters():
            p.requires_grad_(False)
    pairs = ((objective.encoder, objective.key_encoder), (objective.projector, objective.key_projector))
    return BuiltMethod(objective, MultiView(augment, augment), defaults, momentum_pairs=pairs)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values MoCo v3 cannot use (checked at plan time and by ``build``)."""
    checks.need_number(OWNER, "temperature", options["temperature"], gt=0, optional=True)
    checks.need_number(OWNER, "tau", options["tau"], ge=0, lt=1)
    for name in ("hidden", "dim"):
        checks.need_int(OWNER, name, options[name], low=1)
    checks.need_int(OWNER, "proj_layers", options["proj_layers"], low=1, optional=True)
    checks.need_number(OWNER, "lr", options["lr"], gt=0, optional=True)
    checks.need_number(OWNER, "weight_decay", options["weight_decay"], ge=0, optional=True)
    checks.need_number(OWNER, "warmup_fraction", options["warmup_fraction"], ge=0, lt=1, optional=True)
    checks.need_bool(OWNER, "freeze_patch_embed", options["freeze_patch_embed"])
    checks.need_int(OWNER, "batch_size", options["batch_size"], low=2)
    check_view_options(OWNER, options)
