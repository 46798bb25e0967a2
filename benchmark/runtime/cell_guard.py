"""Guards around one cell's plugin code: ``sys.exit`` from a plugin and a cell that never ends.

A plugin that calls ``sys.exit()`` inside ``encode`` (or ``load``, ``evaluate``) would end ``repbench eval``
with no record, no table and nothing on stderr; :func:`exit_error` turns the ``SystemExit`` into a
:class:`~benchmark.errors.ContractError` naming the plugin, so the cell is a failed record and the sweep goes on.

:func:`cell_timeout` (``--cell-timeout``, off by default) raises :class:`CellTimeout` in the cell once its time
is up, via ``SIGALRM`` (POSIX, main thread): Python code (a loop, a ``sleep``) is interrupted at once, a long
native call when it returns to Python. The alarm repeats every second until the cell's code gives up, so plugin
code that swallows the first one does not escape.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from benchmark.errors import ContractError, OptionError, RepbenchError


class CellTimeout(RepbenchError, TimeoutError):
    """A cell ran past ``--cell-timeout``."""


def check_timeout(seconds: float | None) -> None:
    """``--cell-timeout`` is positive and usable here (raises :class:`OptionError` before any work)."""
    if seconds is None:
        return
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise OptionError(f"--cell-timeout {seconds}: give a positive number of seconds (or leave it off)")
    if not hasattr(signal, "setitimer"):
        raise OptionError("--cell-timeout needs POSIX signals (SIGALRM), which this platform lacks; leave it off")


@contextmanager
def cell_timeout(seconds: float | None, what: str) -> Iterator[None]:
    """Raise :class:`CellTimeout` naming ``what`` in this block once ``seconds`` have passed (None: no limit;
    outside the main thread, no limit either: signals reach the main thread only)."""
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: FrameType | None) -> None:
        raise CellTimeout(f"{what} ran past --cell-timeout {seconds:g} s and was stopped; raise the limit or "
                          "find what hangs (an encoder, a dataset, a protocol)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _module_of(fn: Any) -> str | None:
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__module__", None)


def cell_parts(catalog: Any, cell: Any) -> dict[str, tuple[str, Any, str | None]]:
    """Per role of a runner cell: the label, the spec's callable and the plugin, for :func:`exit_error`."""
    return {"encoder": (cell.encoder.label, cell.encoder.spec.load, catalog.plugin_of("encoders", cell.encoder.spec)),
            "dataset": (cell.dataset.label, cell.dataset.spec.load, catalog.plugin_of("datasets", cell.dataset.spec)),
            "protocol": (cell.protocol.label, cell.protocol.spec.evaluate,
                         catalog.plugin_of("protocols", cell.protocol.spec))}


def exit_error(exc: SystemExit, parts: dict[str, tuple[str, Any, str | None]]) -> ContractError:
    """A ContractError for a ``SystemExit`` raised by plugin code during a cell. ``parts`` maps a role
    (``encoder``, ``dataset``, ``protocol``) to (label, the spec's callable, plugin name); the role whose module
    holds the innermost frame of the exit is named, else all of them."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(str(tb.tb_frame.f_globals.get("__name__", "")))
        tb = tb.tb_next
    modules = {role: _module_of(fn) for role, (_, fn, _) in parts.items()}
    named = list(parts)
    for frame in reversed(frames):
        hits = [role for role, mod in modules.items() if mod and (frame == mod or frame.startswith(mod + "."))]
        if hits:
            named = hits
            break
    who = "; ".join(f"{role} {parts[role][0]!r} (plugin {parts[role][2]})" for role in named)
    return ContractError(f"plugin code called sys.exit({exc.code!r}) during the cell: {who}; a plugin must raise "
                         "an exception, never exit the process")
