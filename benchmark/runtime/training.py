"""The building blocks of repbench's one training loop, shared by fine-tuning and pretraining methods.

Everything here is deterministic given its inputs and free of I/O: the learning-rate schedule (linear warm-up,
then cosine to zero, per optimiser step), epoch batching from a seeded numpy generator, AdamW parameter groups
with no weight decay on biases and norm scales, one optimiser step with optional
global-norm clipping, and an in-memory snapshot of the best weights. ``protocols/finetune.py`` composes them.

The pretraining loop (:mod:`benchmark.methods.trainer`) composes the same schedule, groups and step, plus the
pieces below them: :class:`LARS` and :func:`build_optimizer` (a method recipe's ``sgd`` / ``lars`` / ``adamw``),
the momentum (EMA) target of BYOL, DINO and MoCo v3 (:func:`frozen_copy`, :func:`ema_tau`,
:func:`ema_update`), the views dataset and resumable epoch batches
(:class:`ViewsDataset`, :class:`EpochBatches`) and the RNG fork (:func:`own_rng`). Precision, autocast and peak
memory live in :mod:`benchmark.runtime.devices`.
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

from benchmark.errors import ContractError
from benchmark.runtime import distributed as dist
from benchmark.specs import Split

M = TypeVar("M", bound=torch.nn.Module)


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


def cosine_between(step: int, total_steps: int, start: float, end: float) -> float:
    """A cosine from ``start`` at step 0 to ``end`` at ``total_steps`` (DINO's weight-decay schedule)."""
    return end + (start - end) * (math.cos(math.pi * min(step, total_steps) / max(1, total_steps)) + 1.0) / 2.0


def set_weight_decay(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set the weight decay of the groups that decay (:func:`decay_groups`'); biases and norm scales keep 0."""
    for group in optimizer.param_groups:
        if group["weight_decay"] > 0 or group.get("decays", False):
            group["decays"] = True
            group["weight_decay"] = value


def schedule_weight_decay(optimizer: torch.optim.Optimizer, step: int, total_steps: int, start: float,
                          end: float | None) -> None:
    """A recipe's weight-decay schedule at ``step``: with ``end``, :func:`set_weight_decay` to
    ``cosine_between(step, total_steps, start, end)``; without, nothing (the constant decay the groups hold)."""
    if end is not None:
        set_weight_decay(optimizer, cosine_between(step, total_steps, start, end))


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
    scales. Each group keeps its ``base_lr`` for :func:`set_lr` and whether it ``decays`` for
    :func:`set_weight_decay`. Empty groups are left out."""
    groups = []
    for decay in (True, False):
        chosen = [p for p in params if (p.ndim >= 2) == decay]
        if chosen:
            groups.append({"params": chosen, "lr": lr, "base_lr": lr, "weight_decay": weight_decay if decay else 0.0,
                           "decays": decay})
    return groups


def set_mode(model: Any, train: bool) -> None:
    """``model.train(train)`` for modules; other models have no mode."""
    if isinstance(model, torch.nn.Module):
        model.train(train)


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


# --- pretraining pieces (benchmark.methods.trainer): LARS, the method recipe's optimiser, the EMA ---------------
class LARS(torch.optim.Optimizer):
    """SGD with layer-wise adaptive rate scaling (You et al., 2017), as solo-learn and lightly implement it.

    For each parameter with two or more dimensions (weights) and non-zero weight and gradient norms, the
    gradient plus weight decay is scaled by the trust ratio ``eta * ||w|| / (||g|| + wd * ||w|| + eps)``;
    biases and norm scales (fewer dimensions) take the plain gradient (their groups have no weight decay).
    Then SGD with momentum (no dampening, no Nesterov): ``buf = momentum * buf + d; w -= lr * buf`` (the first
    ``buf`` is ``d``). State: ``momentum_buffer`` per parameter, as ``torch.optim.SGD``.
    """

    def __init__(self, params: Any, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 eta: float = 0.02, eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                                  "eps": eps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            wd, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim >= 2:
                    p_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    trust = group["eta"] * p_norm / (g_norm + p_norm * wd + group["eps"])
                    trust = torch.where((p_norm > 0) & (g_norm > 0), trust, torch.ones_like(trust))
                    d = d.add(p, alpha=wd).mul_(trust)
                elif wd:
                    d = d.add(p, alpha=wd)
                if momentum:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.clone(d).detach()
                    else:
                        state["momentum_buffer"].mul_(momentum).add_(d)
                    d = state["momentum_buffer"]
                p.add_(d, alpha=-group["lr"])
        return loss


OPTIMIZERS: tuple[str, ...] = ("sgd", "lars", "adamw")


def build_optimizer(params: Sequence[torch.Tensor], name: str, lr: float, weight_decay: float,
                    momentum: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Optimizer:
    """The optimiser of a method's recipe over :func:`decay_groups` (no decay on biases and norm scales):
    ``sgd`` (momentum, no Nesterov), ``lars`` (:class:`LARS`, eta 0.02) or ``adamw`` (with ``betas``, torch's
    default unless the recipe says otherwise); ``lr`` is the already scaled base learning rate. ValueError for
    another name."""
    groups = decay_groups(params, lr, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=False)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    raise ValueError(f"unknown optimizer {name!r}: use one of {', '.join(OPTIMIZERS)}")


def frozen_copy(module: M) -> M:
    """A deep copy of ``module`` whose parameters never receive gradients (an EMA target)."""
    target = copy.deepcopy(module)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


def ema_tau(step: int, total_steps: int, tau0: float) -> float:
    """BYOL's EMA rate after 0-based step ``step`` of ``total_steps``: ``1 - (1 - tau0) * (cos(pi k / K) + 1) / 2``
    (``tau0`` at step 0, rising to 1 at the end)."""
    return 1.0 - (1.0 - tau0) * (math.cos(math.pi * step / max(1, total_steps)) + 1.0) / 2.0


@torch.no_grad()
def ema_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """``target = tau * target + (1 - tau) * online`` for every parameter and floating-point buffer (in that
    order: ``mul_(tau)`` then ``add_(online, alpha=1 - tau)``); other buffers (counters) are copied."""
    pairs: list[tuple[torch.Tensor, torch.Tensor]] = list(zip(target.parameters(), online.parameters(), strict=True))
    pairs += list(zip(target.buffers(), online.buffers(), strict=True))
    for t, o in pairs:
        if t.is_floating_point():
            t.mul_(tau).add_(o.detach(), alpha=1.0 - tau)
        else:
            t.copy_(o)


# --- pretraining data and RNG (benchmark.methods.trainer) ----------------------------------------
class ViewsDataset(torch.utils.data.Dataset[Any]):
    """``(views(sample), label)`` per sample: the dataset the loader's workers run."""

    def __init__(self, data: Split, views: Callable[[Any], list[Any]], method_name: str) -> None:
        self.samples, self.labels, self.views, self.name = data.samples, data.labels, views, method_name

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[list[torch.Tensor], int]:
        out = self.views(self.samples[i])
        if not isinstance(out, (list, tuple)) or not out or not all(isinstance(v, torch.Tensor) for v in out):
            raise ContractError(f"method '{self.name}': views(sample) must return a non-empty list of tensors, "
                                f"got {type(out).__name__}")
        return list(out), int(self.labels[i])


def derive_seed(*parts: int) -> int:
    """A 63-bit seed determined by ``parts`` (any integers)."""
    entropy = [p & (2**64 - 1) for p in parts]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> 1)


class EpochBatches:
    """An endless batch sampler: epoch after epoch of ``per_epoch`` full batches of ``batch`` indices, starting at
    global step ``start``. Epoch ``e``'s order: ``RandomSampler`` with a generator seeded by
    ``derive_seed(seed, e)``, or under ``torch.distributed`` this rank's ``DistributedSampler(shuffle=True,
    seed=seed, drop_last=True)`` at epoch ``e``; so any step's batch can be recomputed for a resume."""

    def __init__(self, n: int, batch: int, per_epoch: int, seed: int, start: int) -> None:
        self.n, self.batch, self.per_epoch, self.seed, self.start = n, batch, per_epoch, seed, start

    def order(self, epoch: int) -> list[int]:
        if dist.initialized():
            sampler: torch.utils.data.DistributedSampler[int] = torch.utils.data.DistributedSampler(
                range(self.n), shuffle=True, seed=self.seed, drop_last=True)  # type: ignore[arg-type]
            sampler.set_epoch(epoch)
            return list(sampler)
        gen = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return list(torch.utils.data.RandomSampler(range(self.n), generator=gen))

    def __iter__(self) -> Iterator[list[int]]:
        epoch, position = divmod(self.start, self.per_epoch)
        while True:
            order = self.order(epoch)
            for b in range(position, self.per_epoch):
                yield order[b * self.batch:(b + 1) * self.batch]
            epoch, position = epoch + 1, 0


@contextlib.contextmanager
def own_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Fork torch's, numpy's and Python's global RNGs, seeded with ``seed``; restore the caller's afterwards."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=fork_rng_devices(device)):
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            random.seed(seed)
            yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
