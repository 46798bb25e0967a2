"""The ``finetune`` protocol's options: :class:`FinetuneConfig` (the loop's hyperparameters), the protocol's own
options, every default, and the checks. Free of torch, so the protocol registers without importing its loop
(:mod:`benchmark.protocols.builtin`); the loop is :mod:`benchmark.protocols.finetune`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from benchmark import checks

OWNER = "protocol 'finetune'"


@dataclass(frozen=True)
class FinetuneConfig:
    """Every hyperparameter of the fine-tuning loop (see the module docstring for how each is used); the defaults
    here are the protocol's defaults. Raises OptionError for values the loop cannot use."""

    epochs: int = 5              # budget in epochs; training also stops after `steps` optimiser steps if set
    steps: int | None = None     # None: epochs only
    batch_size: int = 64
    eval_batch_size: int = 256   # batch size for val / test prediction (no effect on the numbers)
    lr: float = 1e-3             # encoder learning rate (0 freezes the encoder: a linear probe trained by SGD)
    head_lr: float = 1e-2        # linear head learning rate
    weight_decay: float = 0.05   # AdamW decoupled decay, on weights only (not biases or norm scales)
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_fraction: float = 0.1  # linear warm-up over this fraction of all steps, then cosine decay to zero
    label_smoothing: float = 0.1
    grad_clip: float = 0.0       # max global gradient norm; 0 turns clipping off
    amp: bool = True             # bf16 autocast, on CUDA only (ignored on the CPU)

    def __post_init__(self) -> None:
        checks.need_int(OWNER, "epochs", self.epochs, 1)
        checks.need_int(OWNER, "steps", self.steps, 1, optional=True)
        checks.need_int(OWNER, "batch_size", self.batch_size, 1)
        checks.need_int(OWNER, "eval_batch_size", self.eval_batch_size, 1)
        checks.need_number(OWNER, "lr", self.lr, ge=0, what="a number >= 0 (0 freezes the encoder)")
        checks.need_number(OWNER, "head_lr", self.head_lr, gt=0)
        checks.need_number(OWNER, "weight_decay", self.weight_decay, ge=0)
        checks.need_number(OWNER, "grad_clip", self.grad_clip, ge=0, what="a number >= 0 (0 turns clipping off)")
        for name in ("beta1", "beta2", "warmup_fraction", "label_smoothing"):
            checks.need_number(OWNER, name, getattr(self, name), ge=0, lt=1)
        checks.need_bool(OWNER, "amp", self.amp)


#: The options handled here, not by FinetuneConfig, and their defaults.
PROTOCOL_DEFAULTS: dict[str, Any] = {
    "augment": True,      # images only: random resized crop back to the image's own size
    "crop_scale": 0.8,    # smallest crop area fraction of the random resized crop
    "hflip": False,       # random horizontal flips: off by default, wrong for digits and text
    "val_fraction": 0.1,  # share of train carved off (seeded, stratified) as val when the dataset has none
}
_HERE = set(PROTOCOL_DEFAULTS)
#: Every option of the protocol with its default: FinetuneConfig's fields (the one source), then the above.
DEFAULTS: dict[str, Any] = {**{f.name: f.default for f in fields(FinetuneConfig)}, **PROTOCOL_DEFAULTS}


def validate_finetune(options: Mapping[str, Any]) -> None:
    """The finetune spec's validator: OptionError for values the protocol cannot use (missing keys take their
    defaults)."""
    config_of(options)


def config_of(options: Mapping[str, Any]) -> FinetuneConfig:
    """The loop's FinetuneConfig for the protocol's options, every option checked (OptionError)."""
    opts = {**DEFAULTS, **options}
    config = FinetuneConfig(**{k: v for k, v in opts.items() if k not in _HERE})
    checks.need_bool(OWNER, "augment", opts["augment"])
    checks.need_number(OWNER, "crop_scale", opts["crop_scale"], gt=0, le=1)
    checks.need_bool(OWNER, "hflip", opts["hflip"])
    checks.need_fraction(OWNER, "val_fraction", opts["val_fraction"])
    return config

