"""Where code runs: device choice, precision and autocast, peak memory, distributed ranks, training building blocks.

Below features/, protocols/ and methods/, so every layer that trains or extracts reaches them without climbing.

The precision names live here, free of torch, so the command line's parsers (``repbench --help``) can offer them
without importing it; :mod:`benchmark.runtime.devices` re-exports them.
"""

from __future__ import annotations

#: The precisions extraction and throughput can run in (features are stored as float32).
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
#: What a training run may ask for: ``auto`` is bf16 on CUDA and fp32 elsewhere.
TRAIN_PRECISIONS: tuple[str, ...] = ("auto", *PRECISIONS)
