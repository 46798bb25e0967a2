"""Inference throughput of encoders (``repbench throughput``), after timm's ``benchmark.py``.

* :mod:`~benchmark.throughput.timing`: warm-up, then device-synchronised timed rounds; median and spread.
* :mod:`~benchmark.throughput.flops`: FLOPs per forward pass (``FlopCounterMode``) and what it left uncounted.
* :mod:`~benchmark.throughput.peaks`: spec-sheet and measured peak FLOP/s (synchronisation, autocast and peak
  memory are :mod:`benchmark.runtime.devices`).
* :mod:`~benchmark.throughput.measure`: every (precision, batch size) cell of one loaded encoder.
* :mod:`~benchmark.throughput.run`: every encoder in a fresh worker process
  (:mod:`~benchmark.throughput.worker`), records written with :mod:`benchmark.results.throughput`.
* :mod:`~benchmark.throughput.cli`: the subcommand (``add_parser``, ``run_command``) and its table.
"""

from benchmark.throughput.measure import Measurement, ThroughputSettings, measure_encoder
from benchmark.throughput.run import Failure, RunResult, run_throughput
from benchmark.throughput.timing import Timing, time_steps

__all__ = ["Measurement", "Failure", "RunResult", "ThroughputSettings", "Timing", "measure_encoder", "run_throughput",
           "time_steps"]
