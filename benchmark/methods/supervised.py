"""``supervised``: the supervised reference a pretraining method is compared against: the backbone plus a linear
head trained with cross-entropy on the labels (He et al., 2016, "Deep Residual Learning for Image Recognition",
the CIFAR-10 recipe: SGD lr 0.1 for batch 128, momentum 0.9, weight decay 5e-4, cosine). A plain plugin module:
the template for a method that reads labels, so its spec says ``uses_labels=True`` and its records say so.

One augmented view per image (random resized crop 0.35-1, no colour jitter, flips off by default). The head's
width is ``num_classes`` (default 1000, enough for any dataset up to ImageNet: logits of classes a dataset does
not have are simply pushed down); set it to the dataset's class count for the classic head. The head is thrown
away after training; only the backbone is evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from benchmark import checks
from benchmark.methods.views import ImageViews, MultiView, check_recipe_options
from benchmark.specs import Backbone, BuiltMethod, TrainDefaults

OWNER = "method 'supervised'"


class SupervisedObjective(nn.Module):
    """``objective(views, labels) -> cross-entropy`` of the linear head on the first view; labels required."""

    def __init__(self, backbone: Backbone, num_classes: int, label_smoothing: float) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.head = nn.Linear(backbone.embed_dim, num_classes)
        self.label_smoothing = label_smoothing

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            raise ValueError(f"{OWNER} trains on labels: the loop must pass them (its spec has uses_labels=True)")
        if labels.numel() and int(labels.max()) >= self.head.out_features:
            raise ValueError(f"{OWNER}: label {int(labels.max())} is outside the head's {self.head.out_features} "
                             "classes; raise the num_classes option")
        logits = self.head(self.encoder.encode(views[0]))
        return F.cross_entropy(logits, labels.long(), label_smoothing=self.label_smoothing)


def build(backbone: Backbone, num_classes: int = 1000, label_smoothing: float = 0.0, lr: float = 0.1,
          weight_decay: float = 5e-4, batch_size: int = 128, crop_min: float = 0.35, color_jitter: float = 0.0,
          hflip: bool = False) -> BuiltMethod:
    """The supervised reference around ``backbone``. ``lr`` is SGD's for a batch of 128."""
    validate(dict(num_classes=num_classes, label_smoothing=label_smoothing, lr=lr, weight_decay=weight_decay,
                  batch_size=batch_size, crop_min=crop_min, color_jitter=color_jitter, hflip=hflip))
    view = ImageViews(backbone, crop_scale=(crop_min, 1.0), hflip=hflip, color_jitter=color_jitter,
                      grayscale_p=0.0)
    defaults = TrainDefaults(optimizer="sgd", lr=lr, reference_batch=128, weight_decay=weight_decay,
                             momentum=0.9, warmup_fraction=0.0, batch_size=batch_size)
    return BuiltMethod(SupervisedObjective(backbone, num_classes, label_smoothing), MultiView(view), defaults)


def validate(options: Mapping[str, Any]) -> None:
    """OptionError for option values the supervised reference cannot use (plan time and ``build``)."""
    checks.need_int(OWNER, "num_classes", options["num_classes"], low=2)
    checks.need_number(OWNER, "label_smoothing", options["label_smoothing"], ge=0, lt=1)
    check_recipe_options(OWNER, options)
