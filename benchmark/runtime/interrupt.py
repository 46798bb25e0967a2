"""Ctrl-C between steps: a training loop ends after the step in progress, with a checkpoint, rather than inside
an optimiser update (:mod:`benchmark.methods.trainer`)."""

from __future__ import annotations

import signal
import threading
from typing import Any


class StepInterrupt:
    """While inside, the first SIGINT (Ctrl-C) only sets ``pressed`` (a second one interrupts at once); outside
    the main thread, or when SIGINT is not Python's default handler, nothing changes."""

    def __init__(self) -> None:
        self.pressed = False

    def _handle(self, signum: int, frame: Any) -> None:
        self.pressed = True
        signal.signal(signal.SIGINT, self._previous)

    def __enter__(self) -> StepInterrupt:
        self._previous: Any = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
