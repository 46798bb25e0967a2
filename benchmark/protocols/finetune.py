"""Fine-tuning (transfer): the encoder plus a linear head trained end to end; the maths, free of CLI and I/O.

The contract of :func:`finetune`, which a hand-written loop can reproduce exactly (the tests do):

- RNG: everything runs inside ``torch.random.fork_rng`` (CPU and the CUDA device used) after
  ``torch.manual_seed(seed)``, so the caller's global RNG state is left alone. The head is ``nn.Linear(embed_dim, num_classes)`` created right after seeding (nothing
  draws from torch's RNG before it). The data order comes from ``np.random.default_rng(seed)``: one
  ``permutation(n)`` per epoch, cut into consecutive batches of ``batch_size``; a last partial batch is dropped
  (a batch of one breaks BatchNorm), unless the whole split is smaller than a batch, then it is one batch.
  Augmentation draws from its own ``np.random.default_rng([seed, 1])``.
- Optimiser: AdamW with two learning rates, ``lr`` for the encoder and ``head_lr`` for the head; weight decay
  applies to tensors with two or more dimensions (weights), not to biases and norm scales.
- Schedule, per optimiser step ``t`` of ``T`` (0-based): linear warm-up over ``W = round(warmup_fraction * T)``
  steps, ``(t + 1) / W``, then cosine decay ``0.5 * (1 + cos(pi * (t - W) / (T - W)))`` towards zero.
  ``T = min(epochs * steps_per_epoch, steps)`` (``steps=None``: epochs only).
- Each step: encoder and head in train mode, ``loss = CE(head(encode(preprocess(batch))), y)`` with label
  smoothing, gradients, optional clipping of the global gradient norm, ``optimizer.step()``.
- After every epoch (and after a last partial one when the ``steps`` budget ends mid-epoch): val top-1 in eval
  mode. The epoch with the best val accuracy is kept, ties going to the lower val cross-entropy (plain, without
  smoothing), then to the earlier epoch: a copy of every weight and buffer (on the CPU) is
  restored at the end, and the test split is predicted once, with those weights. The test split is never looked at
  before that.
- Mixed precision: bf16 autocast on CUDA when ``amp`` is set; never on the CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from benchmark import checks
from benchmark.datasets.base import stratified_split, take
from benchmark.errors import ContractError, DataError
from benchmark.features import to_device
from benchmark.protocols.finetune_options import (  # noqa: F401 (FinetuneConfig, DEFAULTS, ...: re-exported)
    DEFAULTS,
    OWNER,
    PROTOCOL_DEFAULTS,
    FinetuneConfig,
    config_of,
    validate_finetune,
)
from benchmark.runtime.devices import effective_precision, precision_autocast
from benchmark.runtime.training import (
    Snapshot,
    decay_groups,
    epoch_batches,
    fork_rng_devices,
    lr_multiplier,
    optimizer_step,
    set_lr,
    set_mode,
    trainable_parameters,
)
from benchmark.specs import EvalTask, Fittable, ProtocolOutput, Split

Augment = Callable[[Sequence[Any], np.random.Generator], list[Any]]


@dataclass
class FinetuneResult:
    """What :func:`finetune` returns. Curves are per epoch; ``step_losses`` and ``step_lrs`` per step."""

    predictions: np.ndarray
    best_epoch: int
    best_val_top1: float
    val_curve: list[float]
    val_loss_curve: list[float]
    train_loss_curve: list[float]
    steps: int
    epochs_run: int
    steps_per_epoch: int
    warmup_steps: int
    embed_dim: int
    encoder_trainable_params: int
    amp: bool
    head: torch.nn.Linear
    step_losses: list[float] = field(default_factory=list)
    step_lrs: list[tuple[float, float]] = field(default_factory=list)
    train_seconds: float = 0.0


def plan_steps(n_train: int, config: FinetuneConfig) -> tuple[int, int, int]:
    """(steps per epoch, total steps, warm-up steps) for ``n_train`` samples under ``config``'s budget."""
    if n_train < 1:
        raise DataError(f"{OWNER}: the training split is empty")
    per_epoch = max(1, n_train // config.batch_size)
    total = per_epoch * config.epochs
    if config.steps is not None:
        total = min(total, config.steps)
    return per_epoch, total, round(config.warmup_fraction * total)


def random_resized_crop(img: Image.Image, rng: np.random.Generator, scale: tuple[float, float] = (0.8, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Image.Image:
    """torchvision's RandomResizedCrop, drawing from ``rng``, resized back to the image's own size."""
    width, height = img.size
    area = width * height
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return img.resize((width, height), Image.Resampling.BILINEAR, box=(left, top, left + w, top + h))
    return img  # no valid crop in 10 tries (extreme shapes): keep the whole image, as torchvision's fallback does


def image_augmenter(crop_scale: float = 0.8, hflip: bool = False) -> Augment:
    """Standard light augmentation for PIL images: random resized crop (scale ``crop_scale``..1), optional flip.

    Flips default off: they change the meaning of digits and text. Non-image samples pass through untouched.
    """
    checks.need_number(OWNER, "crop_scale", crop_scale, gt=0, le=1)

    def augment(samples: Sequence[Any], rng: np.random.Generator) -> list[Any]:
        out = []
        for s in samples:
            if isinstance(s, Image.Image):
                s = random_resized_crop(s, rng, (crop_scale, 1.0))
                if hflip and rng.random() < 0.5:
                    s = ImageOps.mirror(s)
            out.append(s)
        return out

    return augment


def _features(encoder: Any, samples: Sequence[Any], device: torch.device) -> torch.Tensor:
    out = encoder.encode(to_device(encoder.preprocess(list(samples)), str(device)))
    if not isinstance(out, torch.Tensor):
        out = torch.as_tensor(np.asarray(out, dtype=np.float32))
    out = out.to(device)  # encoders that are not modules (tfidf, pixels) return CPU tensors; the head may be on GPU
    if out.ndim != 2:
        raise ContractError(f"{OWNER}: encode() must return (batch, dim) features, got shape {tuple(out.shape)}")
    return out


class NotDifferentiable(ContractError, RuntimeError):
    """An encoder with trainable weights whose ``encode`` cuts the gradient (a RuntimeError, as it always was)."""


def _trainable(features: torch.Tensor, enc_params: list[torch.Tensor], config: FinetuneConfig
               ) -> torch.Tensor:
    """Features the head can train on; a clear error when gradients cannot reach trainable encoder weights."""
    if features.requires_grad:
        return features
    if enc_params and config.lr > 0:
        raise NotDifferentiable(
            f"{OWNER}: the encoder has trainable parameters but encode() returned features without "
            "gradients (does it run under torch.no_grad() or torch.inference_mode(), or detach?). Make encode() "
            "differentiable, or pass lr=0 to train only the head."
        )
    return features.clone() if features.is_inference() else features  # inference tensors cannot enter autograd


def _amp(device: torch.device, amp: bool) -> str:
    """``amp``: bf16 autocast on CUDA, as extraction does (:func:`~benchmark.runtime.devices.effective_precision`)."""
    return effective_precision("bf16" if amp else "fp32", device)


def predict_logits(encoder: Any, head: torch.nn.Linear, samples: Sequence[Any], batch_size: int,
                   device: torch.device, amp: bool = False) -> torch.Tensor:
    """Float32 logits (N, C) on the CPU, encoder and head in eval mode, no gradients."""
    set_mode(encoder, False)
    head.eval()
    chunks = []
    with torch.no_grad(), precision_autocast(device, _amp(device, amp)):
        for i in range(0, len(samples), batch_size):
            chunks.append(head(_features(encoder, samples[i:i + batch_size], device)).float().cpu())
    return torch.cat(chunks) if chunks else torch.zeros(0, head.out_features)


def _embed_dim(encoder: Any, samples: Sequence[Any], device: torch.device) -> int:
    dim = getattr(encoder, "embed_dim", None)
    if isinstance(dim, int) and dim > 0:
        return dim
    set_mode(encoder, False)  # e.g. raw pixels: the size is known only from a batch; eval mode leaves BN alone
    with torch.no_grad():
        return int(_features(encoder, samples[:2], device).shape[1])


def _val_scores(logits: torch.Tensor, labels: np.ndarray) -> tuple[float, float]:
    """(top-1 accuracy, mean plain cross-entropy) of float32 logits."""
    top1 = float((logits.argmax(1).numpy() == labels).mean())
    return top1, float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels)))


def finetune(encoder: Any, train: Split, val: Split, test: Split, num_classes: int, config: FinetuneConfig, *,
             seed: int = 0, device: str | torch.device = "cpu", augment: Augment | None = None) -> FinetuneResult:
    """Train ``encoder`` + a linear head on ``train``, keep the best epoch on ``val``, predict ``test`` once.

    The encoder is trained in place and left holding the best epoch's weights. See the module docstring for the
    exact contract. ``augment(samples, rng)`` (if given) transforms raw training samples before ``preprocess``.
    """
    if len(val) == 0:
        raise DataError(f"{OWNER}: the val split is empty; the best epoch cannot be chosen")
    dev = torch.device(device)
    per_epoch, total, warmup = plan_steps(len(train), config)
    if isinstance(encoder, torch.nn.Module):
        encoder.to(dev)
    amp = config.amp and dev.type == "cuda"
    start = time.perf_counter()
    with torch.random.fork_rng(devices=fork_rng_devices(dev)):
        torch.manual_seed(seed)
        dim = _embed_dim(encoder, train.samples, dev)
        head = torch.nn.Linear(dim, num_classes).to(dev)
        enc_params = trainable_parameters(encoder)
        groups = (decay_groups(enc_params, config.lr, config.weight_decay)
                  + decay_groups(list(head.parameters()), config.head_lr, config.weight_decay))
        optimizer = torch.optim.AdamW(groups, betas=(config.beta1, config.beta2))
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
        clip_params = enc_params + list(head.parameters())
        order_rng, aug_rng = np.random.default_rng(seed), np.random.default_rng([seed, 1])
        result = FinetuneResult(np.zeros(0, np.int64), 0, -1.0, [], [], [], 0, 0, per_epoch, warmup, dim,
                                sum(p.numel() for p in enc_params), amp, head)
        best: Snapshot | None = None
        best_key = (-1.0, -math.inf)
        for epoch in range(1, config.epochs + 1):
            set_mode(encoder, True)
            head.train()
            losses = []
            for idx in epoch_batches(len(train), config.batch_size, order_rng):
                if result.steps >= total:
                    break
                mult = lr_multiplier(result.steps, total, warmup)
                set_lr(optimizer, mult)
                samples = [train.samples[i] for i in idx]
                if augment is not None:
                    samples = augment(samples, aug_rng)
                y = torch.as_tensor(train.labels[idx], device=dev)
                with precision_autocast(dev, _amp(dev, amp)):
                    logits = head(_trainable(_features(encoder, samples, dev), enc_params, config))
                loss = loss_fn(logits.float(), y)
                optimizer_step(loss, optimizer, clip_params, config.grad_clip)
                losses.append(float(loss.detach()))
                result.step_lrs.append((config.lr * mult, config.head_lr * mult))
                result.steps += 1
            result.step_losses.extend(losses)
            result.train_loss_curve.append(float(np.mean(losses)))
            result.epochs_run = epoch
            val_top1, val_loss = _val_scores(
                predict_logits(encoder, head, val.samples, config.eval_batch_size, dev, amp), val.labels)
            result.val_curve.append(val_top1)
            result.val_loss_curve.append(val_loss)
            if (val_top1, -val_loss) > best_key:
                best_key = (val_top1, -val_loss)
                result.best_epoch, result.best_val_top1 = epoch, val_top1
                best = Snapshot(encoder, head, params=enc_params)
            if result.steps >= total:
                break
        assert best is not None  # at least one epoch ran
        best.restore(encoder, head, params=enc_params)
        result.train_seconds = time.perf_counter() - start
        logits = predict_logits(encoder, head, test.samples, config.eval_batch_size, dev, amp)
    result.predictions = logits.argmax(1).numpy().astype(np.int64)
    return result



def _val_split(task: EvalTask, train: Split, val_fraction: float) -> tuple[Split, Split, str]:
    """(train, val, where val came from): the dataset's own val split, or a seeded stratified carve of train."""
    if task.has_split("val"):
        return train, task.dataset.split("val"), "dataset"
    checks.need_fraction(OWNER, "val_fraction", val_fraction)
    try:
        tr, va = stratified_split(train.labels, val_fraction, seed=task.seed)
    except ValueError as exc:
        raise DataError(
            f"{OWNER}: cannot carve a stratified val split of {val_fraction:g} from "
            f"{len(train)} training samples ({exc}); raise val_fraction or give the dataset a 'val' split"
        ) from exc
    return take(train, tr), take(train, va), f"train[val_fraction={val_fraction:g},seed={task.seed}]"


def evaluate(task: EvalTask, **options: Any) -> ProtocolOutput:
    """Fine-tune ``task.load_encoder()`` with a linear head; choose the epoch on val; predict test once."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise TypeError(f"{OWNER}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(DEFAULTS)}")
    opts = {**DEFAULTS, **options}
    config = config_of(opts)
    train, val, val_source = _val_split(task, task.dataset.split("train"), opts["val_fraction"])
    test = task.dataset.split("test")
    encoder = task.load_encoder()
    if isinstance(encoder, Fittable):  # e.g. TF-IDF: fitted on the training samples only, never val
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
