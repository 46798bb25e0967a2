"""The built-in ``finetune`` protocol: the encoder plus a linear head trained end to end (transfer learning).

A plain plugin module: one ``register_protocols`` hook returning one :class:`ProtocolSpec`. The maths lives in
:mod:`benchmark.protocols.finetune`; this module turns an :class:`EvalTask` into the splits, the augmentation and
the record.

Defaults are CPU-friendly (the built-in offline datasets are small): 5 epochs of batch 64, AdamW with lr 1e-3 for
the encoder and 1e-2 for the new head, weight decay 0.05, 10% linear warm-up then cosine decay, label smoothing
0.1, random-resized-crop augmentation (scale 0.8-1) and no horizontal flip (flips change digits and text).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.data import stratified_split, take
from benchmark.hookspecs import hookimpl
from benchmark.protocols.finetune import FinetuneConfig, finetune, image_augmenter
from benchmark.specs import EvalTask, ProtocolOutput, ProtocolSpec, Split

#: Every option of the protocol, with its default. Those not in FinetuneConfig are handled here.
DEFAULTS: dict[str, Any] = {
    "epochs": 5,              # budget in epochs; training also stops after `steps` optimiser steps if that is set
    "steps": None,            # None: epochs only
    "batch_size": 64,
    "eval_batch_size": 256,   # batch size for val / test prediction (no effect on the numbers)
    "lr": 1e-3,               # encoder learning rate (0 freezes the encoder: a linear probe trained by SGD)
    "head_lr": 1e-2,          # linear head learning rate
    "weight_decay": 0.05,     # AdamW decoupled decay, on weights only (not biases or norm scales)
    "beta1": 0.9,
    "beta2": 0.999,
    "warmup_fraction": 0.1,   # linear warm-up over this fraction of all steps, then cosine decay to zero
    "label_smoothing": 0.1,
    "grad_clip": 0.0,         # max global gradient norm; 0 turns clipping off
    "amp": True,              # bf16 autocast, on CUDA only (ignored on the CPU)
    "augment": True,          # images only: random resized crop back to the image's own size
    "crop_scale": 0.8,        # smallest crop area fraction of the random resized crop
    "hflip": False,           # random horizontal flips: off by default, wrong for digits and text
    "val_fraction": 0.1,      # share of train carved off (seeded, stratified) as val when the dataset has none
}

_HERE = {"augment", "crop_scale", "hflip", "val_fraction"}


def _val_split(task: EvalTask, train: Split, val_fraction: float) -> tuple[Split, Split, str]:
    """(train, val, where val came from): the dataset's own val split, or a seeded stratified carve of train."""
    if task.has_split("val"):
        return train, task.dataset.split("val"), "dataset"
    if not 0 < val_fraction < 1:
        raise ValueError(f"protocol 'finetune': val_fraction must lie in (0, 1), got {val_fraction}")
    try:
        tr, va = stratified_split(train.labels, val_fraction, seed=task.seed)
    except ValueError as exc:
        raise ValueError(
            f"protocol 'finetune': cannot carve a stratified val split of {val_fraction:g} from "
            f"{len(train)} training samples ({exc}); raise val_fraction or give the dataset a 'val' split"
        ) from exc
    return take(train, tr), take(train, va), f"train[val_fraction={val_fraction:g},seed={task.seed}]"


def evaluate(task: EvalTask, **options: Any) -> ProtocolOutput:
    """Fine-tune ``task.load_encoder()`` with a linear head; choose the epoch on val; predict test once."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"protocol 'finetune': unknown option(s) {', '.join(unknown)}; valid: {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **options}
    config = FinetuneConfig(**{k: v for k, v in opts.items() if k not in _HERE})
    train, val, val_source = _val_split(task, task.dataset.split("train"), opts["val_fraction"])
    test = task.dataset.split("test")
    encoder = task.load_encoder()
    if callable(getattr(encoder, "fit", None)):  # e.g. TF-IDF: fitted on the training samples only, never val
        encoder.fit(list(train.samples))
    modality = getattr(task.dataset, "modality", None) or getattr(encoder, "modality", "image")
    augment = image_augmenter(opts["crop_scale"], opts["hflip"]) if modality == "image" and opts["augment"] else None
    result = finetune(encoder, train, val, test, task.num_classes, config, seed=task.seed, device=task.device,
                      augment=augment)
    return ProtocolOutput(
        predictions=result.predictions,
        labels=np.asarray(test.labels, dtype=np.int64),
        metrics={
            "val_top1": result.best_val_top1,
            "val_curve": result.val_curve,
            "val_loss_curve": result.val_loss_curve,
            "train_loss_curve": result.train_loss_curve,
            "steps": result.steps,
            "epochs_run": result.epochs_run,
            "train_seconds": result.train_seconds,
            "encoder_trainable_params": result.encoder_trainable_params,
        },
        chosen={
            "best_epoch": result.best_epoch,
            "val_top1": result.best_val_top1,
            "val_source": val_source,
            "augmentation": (f"random_resized_crop(scale=({opts['crop_scale']:g}, 1))"
                             + (" + hflip" if opts["hflip"] else "")) if augment else "none",
            "amp": "bf16" if result.amp else "off",
            "warmup_steps": result.warmup_steps,
        },
    )


@hookimpl
def register_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec(
            "finetune",
            evaluate=evaluate,
            description="encoder + linear head trained end to end (AdamW, warm-up + cosine); best epoch on val",
            defaults=dict(DEFAULTS),
        )
    ]
