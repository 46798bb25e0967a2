"""The pretraining half of the specs: what a :class:`~benchmark.specs.MethodSpec`'s ``build`` receives
(:class:`Backbone`) and returns (:class:`Method`, usually a :class:`BuiltMethod` with its :class:`TrainDefaults`
recipe), and the :class:`Budget` the loop (:mod:`benchmark.methods.trainer`) trains under. Re-exported by
:mod:`benchmark.specs`, where plugins import them from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable


@dataclass(frozen=True)
class TrainDefaults:
    """A method's recipe, which the loop applies: optimiser (``sgd``, ``lars`` or ``adamw``), base ``lr`` for
    ``reference_batch`` (the loop scales it by global batch / reference batch), ``weight_decay`` (never on
    biases and norm scales), SGD/LARS ``momentum``, ``warmup_fraction`` of the steps (then cosine to zero),
    ``batch_size``, ``grad_clip`` (0: off), and for momentum pairs the EMA ``tau`` at step 0 (raised to 1 by a
    cosine schedule, as in BYOL). AdamW's ``betas`` (torch's default; MAE uses (0.9, 0.95)); ``weight_decay_end``:
    when set, the weight decay follows a cosine from ``weight_decay`` at step 0 to it at the end (DINO's 0.04 to
    0.4); None keeps it constant."""

    optimizer: Literal["sgd", "lars", "adamw"] = "sgd"
    lr: float = 0.06
    reference_batch: int = 128
    weight_decay: float = 5e-4
    momentum: float = 0.9
    warmup_fraction: float = 0.0
    batch_size: int = 128
    grad_clip: float = 0.0
    tau: float = 0.99
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay_end: float | None = None


@dataclass
class Backbone:
    """What a method builds around: the resolved encoder (``resolved.label`` names it in records) and the loaded
    encoder, a :class:`Trainable` ``torch.nn.Module`` whose ``encode(batch) -> (B, embed_dim)`` is
    differentiable. ``input_size`` (C, H, W) and ``mean``/``std`` come from its preprocessing, so views produce
    tensors of the shape and normalisation the backbone expects."""

    resolved: Any  # benchmark.catalog.Resolved (kept Any here: specs must not import the catalog)
    encoder: Any
    embed_dim: int
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@runtime_checkable
class Method(Protocol):
    """What ``MethodSpec.build`` returns; the loop owns everything else.

    - ``views(sample) -> list[Tensor]``: the augmented views of one raw sample (CPU tensors of the backbone's input
      shape; multi-crop: one size per position); runs in data-loader workers: picklable, ``torch``'s RNG only.
    - ``objective``: an ``nn.Module`` holding the backbone and the method's heads, predictor and loss;
      ``objective(views, labels) -> scalar loss`` with ``views`` a list of (B, C, H, W) batches, one per view,
      and ``labels`` (B,) or None. It never calls backward and never moves devices or sets AMP; for losses over
      the whole global batch it calls :func:`benchmark.runtime.distributed.gather` (identity on one process).
    - ``momentum_pairs``: (online, target) modules; after each optimiser step the loop sets
      ``target = tau * target + (1 - tau) * online`` (the target is never optimised).
    - ``defaults``: the :class:`TrainDefaults` recipe.
    - ``on_step(step, total_steps)``: an optional hook called before each step (e.g. a temperature schedule); the
      objective's own optional ``before_step(info)`` gets a :class:`benchmark.methods.schedule.StepInfo` then.
    """

    objective: Any
    momentum_pairs: Sequence[tuple[Any, Any]]
    defaults: TrainDefaults

    def views(self, sample: Any) -> list[Any]: ...


@dataclass
class BuiltMethod:
    """The plain :class:`Method`: what most ``build`` functions return (the built-ins all do). ``views`` is a
    picklable callable (sample -> list of view tensors), so loader workers receive only the augmentations."""

    objective: Any
    views: Callable[[Any], list[Any]]
    defaults: TrainDefaults
    momentum_pairs: Sequence[tuple[Any, Any]] = ()


@dataclass(frozen=True)
class Budget:
    """A fixed training budget; whichever limit is reached first ends training. A ``seconds`` budget fixes the
    schedule's length from a timed warm-up, so cosine and EMA schedules are defined."""

    epochs: int | None = None
    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.epochs is None and self.steps is None and self.seconds is None:
            raise ValueError("a budget needs epochs, steps or seconds")
