"""The building blocks of repbench's one training loop, shared by fine-tuning and (next) pretraining methods.

Everything here is deterministic given its inputs and free of I/O: the learning-rate schedule (linear warm-up,
then cosine to zero, per optimiser step), epoch batching from a seeded numpy generator, AdamW parameter groups
with no weight decay on biases and norm scales, bf16 autocast on CUDA only, one optimiser step with optional
global-norm clipping, and an in-memory snapshot of the best weights. ``protocols/finetune.py`` composes them; the
pretraining loop (the Trainer of ``design.md``) will compose the same pieces, so both train identically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch


def lr_multiplier(step: int, total_steps: int, warmup_steps: int) -> float:
    """The factor applied to every base learning rate at 0-based optimiser step ``step`` of ``total_steps``:
    ``(step + 1) / warmup_steps`` during warm-up, then ``0.5 * (1 + cos(pi * progress))``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, multiplier: float) -> None:
    """Set every group's ``lr`` to its ``base_lr`` times ``multiplier``."""
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * multiplier


def epoch_batches(n: int, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's batches of indices: ``rng.permutation(n)`` cut in full batches; a last partial batch is
    dropped (a batch of one breaks BatchNorm), unless the whole split is smaller than a batch."""
    order = rng.permutation(n)
    if n <= batch_size:
        return [order]
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(n // batch_size)]


def trainable_parameters(model: Any) -> list[torch.Tensor]:
    """The trainable parameters of ``model``: none for objects without ``parameters()`` (raw pixels, numpy)."""
    params = getattr(model, "parameters", None)
    if not callable(params):
        return []
    return [p for p in params() if isinstance(p, torch.Tensor) and p.requires_grad]


def decay_groups(params: Sequence[torch.Tensor], lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: decay on tensors with two or more dimensions (weights), none on biases and norm
    scales. Each group keeps its ``base_lr`` for :func:`set_lr`. Empty groups are left out."""
    groups = []
    for decay in (True, False):
        chosen = [p for p in params if (p.ndim >= 2) == decay]
        if chosen:
            groups.append({"params": chosen, "lr": lr, "base_lr": lr, "weight_decay": weight_decay if decay else 0.0})
    return groups


def set_mode(model: Any, train: bool) -> None:
    """``model.train(train)`` for modules; other models have no mode."""
    if isinstance(model, torch.nn.Module):
        model.train(train)


def autocast(device: torch.device, amp: bool) -> Any:
    """bf16 autocast on CUDA when ``amp``; a no-op context on every other device."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def optimizer_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, clip_params: Iterable[torch.Tensor],
                   grad_clip: float) -> None:
    """zero_grad, backward, optional clipping of the global gradient norm to ``grad_clip`` (0: off), step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(list(clip_params), grad_clip)
    optimizer.step()


def fork_rng_devices(device: torch.device) -> list[int]:
    """The CUDA devices whose RNG ``torch.random.fork_rng`` must save for a run on ``device``."""
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


class Snapshot:
    """A CPU copy of the weights and buffers of some modules (or bare parameters), restorable in place."""

    def __init__(self, *models: Any, params: Sequence[torch.Tensor] = ()) -> None:
        self._states: list[Any] = []
        for model in models:
            if isinstance(model, torch.nn.Module):
                self._states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
            else:  # parameters without a state_dict: copy them one by one
                self._states.append([p.detach().cpu().clone() for p in params])

    def restore(self, *models: Any, params: Sequence[torch.Tensor] = ()) -> None:
        for model, state in zip(models, self._states, strict=True):
            if isinstance(state, dict):
                model.load_state_dict(state)
            else:
                with torch.no_grad():
                    for p, saved in zip(params, state, strict=True):
                        p.copy_(saved)
