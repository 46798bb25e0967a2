"""``dino``: DINO (Caron et al., 2021, "Emerging Properties in Self-Supervised Vision Transformers"). A plain plugin
module, and the template for a method with multi-crop views and schedules inside its objective.

Multi-crop: 2 global crops (area 0.4-1) at the backbone's input size and ``local_crops`` local crops (area
0.05-0.4) at ``local_size`` (default half the input size); the loader batches each crop position, and the student
runs one forward pass per resolution (:func:`~benchmark.methods.views.by_resolution`; a ViT is made to take the
smaller crops by resampling its positional embedding). The teacher, an EMA of the student (``momentum_pairs``:
0.996 rising to 1 on a cosine, as the paper), sees the global crops only. Both end in the DINO head: a 3-layer MLP
(GELU) to a bottleneck, L2 normalisation, and a weight-normalised last layer (norm fixed at 1) to ``out_dim``
prototypes. The loss is the cross-entropy of the centred, sharpened teacher distribution against the student's for
every pair of different crops (:func:`~benchmark.methods.recent_losses.dino_loss`); the centre is a moving average
(momentum 0.9) of the teacher outputs over the global batch. Schedules read the step from ``before_step``
(:class:`~benchmark.methods.schedule.StepInfo`): the teacher temperature warms up linearly from 0.04 to 0.07 over
the first 10% of the steps (the paper's 30 of 300 epochs), and the last layer gets no gradient during the first
``freeze_last_share`` of the steps (1%: the paper's first 1 of 100 epochs; a share, like the other schedules here,
so a short budget does not keep it frozen all run). Recipe: AdamW (torch's betas, as the paper), base lr 5e-4 for
batch 256, weight decay on a cosine from 0.04 to 0.4 over the run (the loop's ``weight_decay_end``), 10% warm-up,
gradient clipping at 3. Head sizes are scaled down for small
backbones (hidden 1024, bottleneck 256, 4096 prototypes; the paper's are 2048, 256, 65536). Solarisation and blur
at small sizes are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark import checks
from benchmark.errors import OptionError
from benchmark.methods.recent_losses import dino_center, dino_loss, linear_warmup
from benchmark.methods.schedule import StepInfo
from benchmark.methods.views import ImageViews, MultiView, by_resolution, check_recipe_options
from benchmark.methods.vit import allow_any_size, check_patch_grid, vit_of
from benchmark.runtime.training import frozen_copy
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'dino'"


class DINOHead(nn.Module):
    """MLP (``in -> hidden -> hidden -> bottleneck``, GELU), L2 normalisation, then the last layer with its rows
    normalised to length 1 (``weight_norm`` with the norm fixed at 1). While ``frozen`` the last layer's weight is
    used detached, so it receives no gradient (and the optimiser skips it, as DINO's cancelled gradients)."""

    def __init__(self, in_dim: int, hidden: int, bottleneck: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                nn.init.zeros_(layer.bias)
        self.last = nn.Parameter(torch.empty(out_dim, bottleneck))
        nn.init.trunc_normal_(self.last, std=0.02)
        self.frozen = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.normalize(self.mlp(x), dim=-1)
        weight = self.last.detach() if self.frozen else self.last
        return F.linear(x, F.normalize(weight, dim=1))


class DINOObjective(nn.Module):
    """``objective(views, labels=None) -> loss``: views ``[global_1, global_2, local_1, ...]``."""

    def __init__(self, backbone: Backbone, head: tuple[int, int, int], temps: tuple[float, float, float],
                 warmup_fraction: float, center_momentum: float, freeze_last_share: float) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.head = DINOHead(backbone.embed_dim, *head)
        self.teacher_encoder = frozen_copy(self.encoder)
        self.teacher_head = frozen_copy(self.head)
        self.center: torch.Tensor
        self.register_buffer("center", torch.zeros(1, head[2]))
        self.student_temp, self.warmup_temp, self.final_temp = temps
        self.teacher_temp = self.warmup_temp
        self.warmup_fraction, self.center_momentum = warmup_fraction, center_momentum
        self.freeze_last_share = freeze_last_share

    def before_step(self, info: StepInfo) -> None:
        """The teacher temperature's warm-up and the frozen last layer, from the step alone (resumable)."""
        warmup = round(self.warmup_fraction * info.total_steps)
        self.teacher_temp = linear_warmup(info.step, warmup, self.warmup_temp, self.final_temp)
        self.head.frozen = info.step < round(self.freeze_last_share * info.total_steps)

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        student: list[torch.Tensor] = [torch.empty(0)] * len(views)
        for positions, batch in by_resolution(views):
            outs = self.head(self.encoder.encode(batch)).chunk(len(positions))
            for i, out in zip(positions, outs, strict=True):
                student[i] = out
        with torch.no_grad():
            teacher = list(self.teacher_head(self.teacher_encoder.encode(torch.cat(views[:2]))).chunk(2))
        loss = dino_loss(student, teacher, self.center, self.student_temp, self.teacher_temp)
        if self.training:
            self.center.copy_(dino_center(self.center, teacher, self.center_momentum))
        return loss


def build(backbone: Backbone, local_crops: int = 8, local_size: int | None = None, global_crop_min: float = 0.4,
          local_crop_max: float = 0.4, out_dim: int = 4096, hidden: int = 1024, bottleneck: int = 256,
          student_temp: float = 0.1, warmup_teacher_temp: float = 0.04, teacher_temp: float = 0.07,
          teacher_temp_warmup: float = 0.1, center_momentum: float = 0.9, freeze_last_share: float = 0.01,
          tau: float = 0.996, lr: float = 5e-4, weight_decay: float = 0.04, weight_decay_end: float = 0.4,
          warmup_fraction: float = 0.1,
          grad_clip: float = 3.0, batch_size: int = 64, color_jitter: float = 0.4, hflip: bool = False,
          blur: bool = False) -> BuiltMethod:
    """DINO around ``backbone``. ``lr`` is AdamW's for a batch of 256; ``tau``: the teacher's momentum at step 0;
    ``teacher_temp_warmup``: the share of the steps over which the teacher temperature warms up;
    ``freeze_last_share``: the share of the steps with the head's last layer frozen."""
    options = dict(local_crops=local_crops, local_size=local_size, global_crop_min=global_crop_min,
                   local_crop_max=local_crop_max, out_dim=out_dim, hidden=hidden, bottleneck=bottleneck,
                   student_temp=student_temp, warmup_teacher_temp=warmup_teacher_temp, teacher_temp=teacher_temp,
                   teacher_temp_warmup=teacher_temp_warmup, center_momentum=center_momentum,
                   freeze_last_share=freeze_last_share, tau=tau, lr=lr, weight_decay=weight_decay,
                   weight_decay_end=weight_decay_end,
                   warmup_fraction=warmup_fraction, grad_clip=grad_clip, batch_size=batch_size,
                   color_jitter=color_jitter, hflip=hflip, blur=blur)
    validate(options)
    _, height, width = backbone.input_size
    small = local_size if local_size is not None else max(1, min(height, width) // 2)
    if small > min(height, width):
        raise OptionError(f"{OWNER}: local_size {small} is larger than the image ({height}x{width}); local crops "
                          "must be at most the input size")
    vit = vit_of(backbone)
    if vit is not None:
        check_patch_grid(OWNER, backbone, vit, (small,) if local_crops else ())
        allow_any_size(vit)
    global_view = ImageViews(backbone, crop_scale=(global_crop_min, 1.0), hflip=hflip, color_jitter=color_jitter,
                             blur=blur)
    local_view = ImageViews(backbone, crop_scale=(0.05, local_crop_max), size=small, hflip=hflip,
                            color_jitter=color_jitter, blur=blur)
    defaults = TrainDefaults(optimizer="adamw", lr=lr, reference_batch=256, weight_decay=weight_decay,
                             warmup_fraction=warmup_fraction, batch_size=batch_size, grad_clip=grad_clip, tau=tau,
                             weight_decay_end=weight_decay_end)
    objective = DINOObjective(backbone, (hidden, bottleneck, out_dim), (student_temp, warmup_teacher_temp, teacher_temp),
                              teacher_temp_warmup, center_momentum, freeze_last_share)
    pairs = ((objective.encoder, objective.teacher_encoder), (objective.head, objective.teacher_head))
    views = MultiView(global_view, global_view, *[local_view] * local_crops)
    return BuiltMethod(objective, views, defaults, momentum_pairs=pairs)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values DINO cannot use (checked at plan time and by ``build``)."""
    checks.need_int(OWNER, "local_crops", options["local_crops"], low=0)
    checks.need_int(OWNER, "local_size", options["local_size"], low=1, optional=True)
    checks.need_number(OWNER, "global_crop_min", options["global_crop_min"], gt=0, le=1)
    checks.need_number(OWNER, "local_crop_max", options["local_crop_max"], gt=0.05, le=1)
    for name in ("out_dim", "hidden", "bottleneck"):
        checks.need_int(OWNER, name, options[name], low=1)
    for name in ("student_temp", "warmup_teacher_temp", "teacher_temp"):
        checks.need_number(OWNER, name, options[name], gt=0)
    checks.need_number(OWNER, "teacher_temp_warmup", options["teacher_temp_warmup"], ge=0, le=1)
    checks.need_number(OWNER, "center_momentum", options["center_momentum"], ge=0, lt=1)
    checks.need_number(OWNER, "freeze_last_share", options["freeze_last_share"], ge=0, le=1)
    checks.need_number(OWNER, "weight_decay_end", options["weight_decay_end"], ge=0)
    checks.need_number(OWNER, "tau", options["tau"], ge=0, lt=1)
    checks.need_number(OWNER, "warmup_fraction", options["warmup_fraction"], ge=0, lt=1)
    checks.need_number(OWNER, "grad_clip", options["grad_clip"], ge=0)
    check_recipe_options(OWNER, {**options, "crop_min": options["global_crop_min"]})
