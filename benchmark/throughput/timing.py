"""The timing method (after timm's ``benchmark.py``): warm-up steps first, then device-synchronised rounds.

:func:`time_steps` runs ``warmup`` calls of ``step`` (each followed by ``sync``; the first one's time is kept as
``first_step_s``, which holds compilation and autotuning), then ``rounds`` timed rounds of ``steps_per_round``
calls each: ``sync(); t0 = clock(); step() x steps_per_round; sync(); t1 = clock()``. Warm-up never enters the
rounds. Each round gives seconds per batch ``(t1 - t0) / steps_per_round``; the summary is their median, min,
max and quartiles, and samples/s is ``batch_size / median``. ``steps_per_round=None`` picks enough steps for a
round of about ``target_round_s`` from the fastest warm-up step (1 without warm-up).

The clock and the synchronisation are arguments, so tests drive the method with a fake clock and a fake device.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]
Sync = Callable[[], None]

#: What a round lasts when steps_per_round is chosen automatically, and the most steps a round may take.
TARGET_ROUND_S = 0.2
MAX_STEPS_PER_ROUND = 1000


@dataclass(frozen=True)
class Timing:
    """Timed rounds of one (model, batch size, precision). ``round_s``: seconds per batch of each round."""

    batch_size: int
    warmup: int
    steps_per_round: int
    round_s: tuple[float, ...]
    first_step_s: float | None = None

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.round_s))

    @property
    def min_s(self) -> float:
        return min(self.round_s)

    @property
    def max_s(self) -> float:
        return max(self.round_s)

    @property
    def quartiles_s(self) -> tuple[float, float]:
        """(first, third) quartile of the rounds (inclusive method; both the value itself for one round)."""
        if len(self.round_s) < 2:
            return self.round_s[0], self.round_s[0]
        q1, _, q3 = statistics.quantiles(self.round_s, n=4, method="inclusive")
        return float(q1), float(q3)

    @property
    def samples_per_s(self) -> float:
        return self.batch_size / self.median_s

    def to_json(self) -> dict[str, Any]:
        """The record's ``timing`` block (seconds per batch)."""
        q1, q3 = self.quartiles_s
        return {"warmup": self.warmup, "rounds": len(self.round_s), "steps_per_round": self.steps_per_round,
                "round_s": list(self.round_s), "median_s": self.median_s, "min_s": self.min_s,
                "max_s": self.max_s, "q1_s": q1, "q3_s": q3, "first_step_s": self.first_step_s}

    def metrics(self) -> dict[str, float]:
        """samples/s at the median round (and at the slowest and fastest) and milliseconds per batch."""
        return {"samples_per_s": self.samples_per_s, "samples_per_s_min": self.batch_size / self.max_s,
                "samples_per_s_max": self.batch_size / self.min_s, "ms_per_batch": 1000.0 * self.median_s}


def _auto_steps(warmup_s: list[float], target_round_s: float) -> int:
    """Steps for a round of about ``target_round_s``, from the fastest warm-up step (the first one compiles)."""
    usable = warmup_s[1:] or warmup_s
    if not usable:
        return 1
    fastest = max(min(usable), 1e-9)
    return max(1, min(MAX_STEPS_PER_ROUND, math.ceil(target_round_s / fastest - 1e-9)))  # 0.2/0.01 is 20.000..04


def time_steps(step: Callable[[], Any], *, batch_size: int, warmup: int = 3, rounds: int = 5,
               steps_per_round: int | None = 1, sync: Sync = lambda: None, clock: Clock = time.perf_counter,
               target_round_s: float = TARGET_ROUND_S) -> Timing:
    """Warm up, then time ``rounds`` rounds of ``step`` (see the module docstring); exceptions of ``step``
    (out of memory) propagate unchanged."""
    if rounds < 1 or warmup < 0 or batch_size < 1:
        raise ValueError(f"need rounds >= 1, warmup >= 0 and batch_size >= 1, got {rounds}, {warmup}, {batch_size}")
    if steps_per_round is not None and steps_per_round < 1:
        raise ValueError(f"steps_per_round must be >= 1 or None (auto), got {steps_per_round}")
    warmup_s: list[float] = []
    for _ in range(warmup):
        sync()
        start = clock()
        step()
        sync()
        warmup_s.append(clock() - start)
    steps = steps_per_round if steps_per_round is not None else _auto_steps(warmup_s, target_round_s)
    round_s: list[float] = []
    for _ in range(rounds):
        sync()
        start = clock()
        for _ in range(steps):
            step()
        sync()
        round_s.append((clock() - start) / steps)
    if any(r <= 0 for r in round_s):  # a clock too coarse for the step: better an error than infinite rates
        raise RuntimeError(f"the clock measured a round of {min(round_s)} s; use more steps per round")
    return Timing(batch_size, warmup, steps, tuple(round_s), warmup_s[0] if warmup_s else None)
