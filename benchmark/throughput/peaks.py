"""What a device can do at its peak: FLOP/s from spec sheets and from a timed matmul, and its name.

Peak FLOP/s come from two places, both recorded:

* :data:`SPEC_PEAKS`, the vendor's spec-sheet numbers (dense, i.e. without 2:4 sparsity) for common GPUs,
  matched on ``torch.cuda.get_device_name()``. ``fp32`` is the plain (non tensor-core) FP32 rate, which is what
  PyTorch uses unless TF32 matmuls are allowed, then the ``tf32`` column applies. On CPU there is no table.
* :func:`measured_matmul_peak`: a short timed square matmul on the device at the run's precision, a practical
  ceiling that also exists for CPUs and unlisted GPUs.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from benchmark.runtime.devices import DTYPES, fp32_matmul_uses_tf32, is_cuda, synchronizer

TFLOP = 1e12


@dataclass(frozen=True)
class SpecPeak:
    """Dense peak TFLOP/s of one GPU model by precision (None: not supported) and the spec sheet they are from."""

    pattern: str  # a regular expression searched in the lower-cased device name; most specific entries first
    fp32: float
    tf32: float | None
    bf16: float | None
    fp16: float | None
    source: str


_H100 = "NVIDIA H100 Tensor Core GPU datasheet (dense)"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet (dense)"
_ADA = "NVIDIA Ada Lovelace GPU architecture whitepaper, appendix A (dense, FP32 accumulate)"
#: Spec-sheet dense peaks in TFLOP/s (where a sheet's headline figure is "with sparsity", half of it). Order
#: matters: the first pattern found in the device name wins.
SPEC_PEAKS: tuple[SpecPeak, ...] = (
    SpecPeak(r"\bh200 nvl\b", 60.0, 417.5, 835.5, 835.5, _H200 + ", H200 NVL"),
    SpecPeak(r"\bh200\b", 67.0, 494.5, 989.5, 989.5, _H200 + ", H200 SXM"),
    SpecPeak(r"\bh100 nvl\b", 60.0, 417.5, 835.5, 835.5, _H100 + ", H100 NVL"),
    SpecPeak(r"\bh100 pcie\b", 51.0, 378.0, 756.5, 756.5, _H100 + ", H100 PCIe"),
    SpecPeak(r"\bh100\b", 67.0, 494.5, 989.5, 989.5, _H100 + ", H100 SXM"),
    SpecPeak(r"\ba100\b", 19.5, 156.0, 312.0, 312.0, "NVIDIA A100 Tensor Core GPU datasheet (dense)"),
    SpecPeak(r"\brtx 4090\b", 82.6, 82.6, 165.2, 165.2, _ADA + ", GeForce RTX 4090"),
    SpecPeak(r"\bl40s\b", 91.6, 183.0, 362.05, 362.05, "NVIDIA L40S datasheet (dense)"),
    SpecPeak(r"\bl4\b", 30.3, 60.0, 121.0, 121.0, "NVIDIA L4 Tensor Core GPU datasheet (dense)"),
    SpecPeak(r"\ba10\b", 31.2, 62.5, 125.0, 125.0, "NVIDIA A10 Tensor Core GPU datasheet (dense)"),
    SpecPeak(r"\bt4\b", 8.1, None, None, 65.0, "NVIDIA T4 Tensor Core GPU datasheet (FP16/FP32 mixed)"),
    SpecPeak(r"\bv100-pcie", 14.0, None, None, 112.0, "NVIDIA V100 Tensor Core GPU datasheet, PCIe"),
    SpecPeak(r"\bv100\b", 15.7, None, None, 125.0, "NVIDIA V100 Tensor Core GPU datasheet, SXM2"),
)


def device_name(device: str) -> str:
    """``torch.cuda.get_device_name`` for CUDA; for CPU the processor, its cores and torch's threads."""
    from benchmark.results.environment import environment

    return str(environment(device)["device_name"])


def spec_peak(name: str, precision: str, device: str = "cuda") -> tuple[float | None, str]:
    """(dense peak FLOP/s, source) of the GPU called ``name`` at ``precision``; (None, why) when unknown."""
    if not is_cuda(device):
        return None, "no spec-sheet peak for CPUs"
    lowered = name.lower()
    for peak in SPEC_PEAKS:
        if re.search(peak.pattern, lowered):
            column = "tf32" if precision == "fp32" and fp32_matmul_uses_tf32(device) else precision
            value = getattr(peak, column)
            if value is None:
                return None, f"{name}: no {column} rate on its spec sheet ({peak.source})"
            return value * TFLOP, f"{peak.source}: {value:g} TFLOP/s {column}"
    return None, f"device {name!r} is not in the spec-sheet table"


# --- measured matmul peak -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _timed(sync: Callable[[], None], out: list[float]) -> Iterator[None]:
    sync()
    start = time.perf_counter()
    yield
    sync()
    out.append(time.perf_counter() - start)


def measured_matmul_peak(device: str, precision: str, *, budget_s: float = 0.25, n_max: int | None = None
                         ) -> tuple[float, int]:
    """(FLOP/s, n) of a square n x n matmul in ``precision``'s dtype on ``device``: n doubles from 256 until one
    product takes >= 10 ms or reaches ``n_max`` (8192 on CUDA, 2048 on CPU), then products run until
    ``budget_s`` elapsed (at least 5); the rate of the fastest one (each counts 2 n^3 FLOPs)."""
    n_max = n_max or (8192 if is_cuda(device) else 2048)
    dtype, sync = DTYPES[precision], synchronizer(device)
    n, times = 256, [0.0]
    while True:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        times = []
        with torch.inference_mode(), _timed(sync, times):
            torch.mm(a, b)
        if times[0] >= 0.01 or n >= n_max:
            break
        n *= 2
    total, count, times = 0.0, 0, []
    with torch.inference_mode():
        while count < 5 or total < budget_s:
            with _timed(sync, times):
                torch.mm(a, b)
            total, count = total + times[-1], count + 1
    # the fastest product: a busy device slows some products down, never speeds one up, so the best of
    # several is the least undercut estimate of what the device can do (the mean is dragged down by contention)
    return 2.0 * n**3 / max(min(times), 1e-12), n
