"""Inference throughput of encoders (``repbench throughput``), after timm's ``benchmark.py``.

* :mod:`~benchmark.throughput.timing`: warm-up, then device-synchronised timed rounds; median and spread.
* :mod:`~benchmark.throughput.flops`: FLOPs per forward pass (``FlopCounterMode``) and what it left uncounted.
* :mod:`~benchmark.throughput.peaks`: spec-sheet and measured peak FLOP/s (synchronisation, autocast and peak
  memory are :mod:`benchmark.runtime.devices`).
* :mod:`~benchmark.throughput.measure`: every (precision, batch size) cell of one loaded encoder.
* :mod:`~benchmark.throughput.run`: every encoder in a fresh worker process
  (:mod:`~benchmark.throughput.worker`), records written with :mod:`benchmark.results.throughput`.
* :mod:`~benchmark.throughput.cli`: the subcommand (``add_parser``, ``run_command``) and its table.

The names below load lazily (they import torch), so ``repbench --help`` and ``--version``, which import the
subcommand's parser from :mod:`~benchmark.throughput.cli`, do not.
"""

from __future__ import annotations

from typing import Any

#: public name -> the module that defines it
_HOMES = {"Measurement": "measure", "ThroughputSettings": "measure", "measure_encoder": "measure", "Failure": "run",
          "RunResult": "run", "run_throughput": "run", "Timing": "timing", "time_steps": "timing"}

__all__ = ["Measurement", "Failure", "RunResult", "ThroughputSettings", "Timing", "measure_encoder", "run_throughput",
           "time_steps"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        import importlib

        return getattr(importlib.import_module(f"benchmark.throughput.{_HOMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
