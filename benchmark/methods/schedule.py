"""Where the loop is, for objectives with schedules of their own (the contract's per-step hook).

Before every step the loop calls ``objective.before_step(info)`` when the objective defines it, with a
:class:`StepInfo`: the 0-based step about to run, the schedule's length ``K`` and the steps per epoch. DINO's
teacher temperature warm-up and its frozen last layer in the first epoch read it; so can any plugin's
objective. Everything a hook derives must follow from ``info`` (and the weights), never from how many times it
was called, so a resumed run sets the same values as an uninterrupted one. (``Method.on_step(step, total)``,
the older hook on the method, is still called first.)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["StepInfo"]


@dataclass(frozen=True)
class StepInfo:
    """The step about to run (0-based), the schedule's ``total_steps`` (provisional while a seconds budget is
    still timing steps) and ``steps_per_epoch`` (per process)."""

    step: int
    total_steps: int
    steps_per_epoch: int

    @property
    def epoch(self) -> int:
        """The 0-based epoch the step belongs to."""
        return self.step // max(1, self.steps_per_epoch)

    @property
    def progress(self) -> float:
        """``step / total_steps`` in [0, 1]."""
        return min(1.0, self.step / max(1, self.total_steps))
