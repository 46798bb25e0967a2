"""What a run of the pretraining loop (:mod:`benchmark.methods.trainer`) keeps and reports: its :class:`Progress`
(the loop state that goes into checkpoints besides tensors, watch curve included) and the :class:`TrainResult`
that :func:`~benchmark.methods.trainer.train` returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainResult:
    """What :func:`~benchmark.methods.trainer.train` returns. ``epochs`` is fractional (steps / steps_per_epoch); ``seconds`` and the curves
    cover the whole run, before a resume included; ``stopped_by`` is ``steps``, ``epochs``, ``seconds``,
    ``paused`` (``pause_at_step``) or ``collapse``; ``estimate`` says how ``estimated_total_steps`` (the schedule's
    K) was fixed; ``watch_curve`` and ``collapse`` come from the watch (:mod:`benchmark.methods.watch`).
    ``samples_per_s`` is over all of ``seconds``; ``watch_seconds`` is the part the watch's checks took, and
    ``train_samples_per_s`` the rate without it (the loop's own throughput)."""

    steps: int
    epochs: float
    seconds: float
    samples_per_s: float
    peak_memory_bytes: int
    loss_curve: list[float]
    lr_curve: list[float]
    estimated_total_steps: int
    stopped_by: str
    resumed_from_step: int | None
    estimate: str = ""
    steps_per_epoch: int = 0
    batch_size: int = 0
    global_batch: int = 0
    world_size: int = 1
    lr: float = 0.0
    warmup_steps: int = 0
    precision: str = "fp32"
    checkpoint: str = ""
    watch_curve: list[dict[str, Any]] = field(default_factory=list)
    collapse: str = ""
    watch_seconds: float = 0.0
    train_samples_per_s: float = 0.0


@dataclass
class Progress:
    """The loop state that goes into checkpoints besides tensors."""

    step: int = 0
    total: int | None = None  # the schedule's K, once fixed
    limit: str = ""           # the budget limit K came from
    estimate: str = ""
    elapsed_s: float = 0.0    # training seconds of earlier calls
    loss_curve: list[float] = field(default_factory=list)
    lr_curve: list[float] = field(default_factory=list)
    stopped_by: str | None = None
    watch_curve: list[dict[str, Any]] = field(default_factory=list)  # online probe and monitors (watch.py)
    collapse: str = ""


def duration(seconds: float) -> str:
    """``1h05m`` / ``4m07s``: an ETA or elapsed time in progress lines."""
    seconds = max(0, int(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
