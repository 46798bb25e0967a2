"""Where code runs and at what precision: the one home of device choice, precision and autocast rules, peak memory
and out-of-memory handling, for extraction (:mod:`benchmark.features.extract`), training
(:mod:`benchmark.methods.trainer`, :mod:`benchmark.protocols.finetune`) and throughput (:mod:`benchmark.throughput`).

One autocast rule (:func:`autocast`): ``fp32`` runs as it is; ``bf16`` / ``fp16`` autocast on the device's own
type. What each caller may ask for differs, and says so in one function each: extraction autocasts on CUDA only
(:func:`effective_precision`), training resolves ``auto`` and needs CUDA for fp16 (:func:`resolve_precision`),
throughput measures any precision on any device.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from collections.abc import Callable
from typing import Any

import torch

from benchmark.errors import OptionError
from benchmark.runtime import PRECISIONS as PRECISIONS  # re-exported: the names live torch-free in runtime
from benchmark.runtime import TRAIN_PRECISIONS as TRAIN_PRECISIONS

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def best_device(requested: str | None = None) -> str:
    """``requested`` if given, else "cuda" when a GPU is visible, else "cpu"."""
    if requested and requested != "auto":
        if requested.startswith("cuda") and not torch.cuda.is_available():
            raise OptionError(f"device {requested!r} was requested but torch sees no CUDA GPU; use --device cpu")
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def synchronizer(device: str) -> Callable[[], None]:
    """The function that waits until every queued kernel on ``device`` finished (a no-op on CPU)."""
    if is_cuda(device):
        dev = torch.device(device)
        return lambda: torch.cuda.synchronize(dev)
    if device.startswith("mps"):
        return lambda: torch.mps.synchronize()
    return lambda: None


def fp32_matmul_uses_tf32(device: str | torch.device) -> bool:
    """Whether fp32 matmuls on ``device`` may run as TF32 (``torch.backends.cuda.matmul.allow_tf32``)."""
    return is_cuda(device) and bool(torch.backends.cuda.matmul.allow_tf32)


def autocast(device: str | torch.device, precision: str) -> tuple[Callable[[], contextlib.AbstractContextManager[Any]], str]:
    """A factory of the context a step runs in at ``precision``, and the words a record uses for what ran:
    ``fp32`` (``fp32 (TF32 matmuls allowed)`` when they are), ``autocast(cuda, bfloat16)``,
    ``autocast(cpu, float16)``, ... bf16 / fp16 autocast runs on CPU too (slow for fp16: no native kernels)."""
    if precision == "fp32":
        return contextlib.nullcontext, "fp32 (TF32 matmuls allowed)" if fp32_matmul_uses_tf32(device) else "fp32"
    dtype = DTYPES[precision]
    kind = torch.device(device).type
    return (lambda: torch.autocast(kind, dtype=dtype)), f"autocast({kind}, {str(dtype).removeprefix('torch.')})"


def precision_autocast(device: str | torch.device, precision: str) -> Any:
    """The context a step runs in at ``precision`` (:func:`autocast`, entered by the caller)."""
    return autocast(device, precision)[0]()


def effective_precision(requested: str, device: str | torch.device) -> str:
    """The precision extraction really runs in: it autocasts on CUDA only, so anything else is fp32."""
    return requested if is_cuda(device) else "fp32"


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for a requested training precision: ``auto`` is bf16 on CUDA and fp32
    elsewhere; fp16 (which needs a GradScaler) only on CUDA. OptionError otherwise."""
    if precision not in TRAIN_PRECISIONS:
        raise OptionError(f"precision {precision!r}: use one of {', '.join(TRAIN_PRECISIONS)}")
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise OptionError("precision 'fp16' needs a CUDA device; use bf16 or fp32 on the CPU")
    return precision


# --- memory -----------------------------------------------------------------------------------------------------
def reset_peak_memory(device: str | torch.device) -> None:
    """Start a new CUDA peak (``torch.cuda.reset_peak_memory_stats``); nothing to reset on CPU."""
    if is_cuda(device):
        torch.cuda.reset_peak_memory_stats(torch.device(device))


def peak_memory(device: str | torch.device) -> tuple[int, str]:
    """(bytes, what they are): ``torch.cuda.max_memory_allocated`` since the last reset on CUDA; on CPU the
    process's peak resident set (``resource.getrusage``), a high-water mark over the whole process: model
    loading and every earlier cell included."""
    if is_cuda(device):
        return int(torch.cuda.max_memory_allocated(torch.device(device))), "torch.cuda.max_memory_allocated"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return int(rss) * scale, "peak RSS of the worker process (getrusage ru_maxrss; includes the model and earlier cells)"


def free_memory(device: str | torch.device) -> None:
    """Return cached blocks after an out-of-memory error, so the next batch size starts clean."""
    import gc

    gc.collect()
    if is_cuda(device):
        torch.cuda.empty_cache()


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` means the device (or the host) ran out of memory."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)
