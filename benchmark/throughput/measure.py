"""Measuring one loaded encoder in this process: every (precision, batch size) cell of a :class:`ThroughputSettings`.

A cell builds its input with the encoder's own ``example_batch`` (:class:`~benchmark.specs.ExampleBatch`),
already on the device, and times ``encoder.encode`` on it under ``torch.inference_mode`` and the precision's
autocast with :func:`~benchmark.throughput.timing.time_steps`. A cell whose batch does not fit in memory
(``torch.cuda.OutOfMemoryError``, ``MemoryError``, an allocator's "out of memory") ends with status ``"oom"``
at the batch size asked for; nothing is ever retried smaller. Any other exception ends the cell with status
``"error"``; later cells still run. Cells run precision by precision, batch sizes ascending.

FLOPs are counted once per encoder, eagerly in fp32 at the smallest batch size, and divided by it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from benchmark.errors import OptionError
from benchmark.features.extract import encoder_name, place_encoder
from benchmark.runtime import devices
from benchmark.runtime.devices import PRECISIONS
from benchmark.specs import ExampleBatch, TokenCounting
from benchmark.throughput import peaks as device_peaks
from benchmark.throughput.flops import FlopCount, count_flops
from benchmark.throughput.timing import Clock, Timing, time_steps

Step = Callable[[], Any]


@dataclass(frozen=True)
class ThroughputSettings:
    """What to measure and how. ``steps_per_round=None``: enough steps for a round of about 0.2 s."""

    batch_sizes: tuple[int, ...] = (1, 32, 256)
    precisions: tuple[str, ...] = ("fp32",)
    device: str = "cpu"
    channels_last: bool = False
    compile: bool = False
    seq_len: int | None = None
    rounds: int = 5
    warmup: int = 3
    steps_per_round: int | None = None
    matmul_peak: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", tuple(sorted(set(int(b) for b in self.batch_sizes))))
        object.__setattr__(self, "precisions", tuple(dict.fromkeys(self.precisions)))
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise OptionError(f"--batch-size: give positive integers, got {list(self.batch_sizes)}")
        bad = [p for p in self.precisions if p not in PRECISIONS]
        if bad or not self.precisions:
            raise OptionError(f"--precision: {bad or 'none given'}; use some of {', '.join(PRECISIONS)}")
        if self.rounds < 1 or self.warmup < 0:
            raise OptionError(f"--rounds must be >= 1 and --warmup >= 0, got {self.rounds} and {self.warmup}")
        if self.compile and self.warmup < 1:
            raise OptionError("--compile needs --warmup >= 1: compilation happens in the first step")
        if self.seq_len is not None and self.seq_len < 1:
            raise OptionError(f"--seq-len must be a positive number of tokens, got {self.seq_len}")
        if self.steps_per_round is not None and self.steps_per_round < 1:
            raise OptionError(f"--steps-per-round must be >= 1, got {self.steps_per_round}")

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ThroughputSettings:
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)


@dataclass
class Measurement:
    """The outcome of one (precision, batch size): ``status`` ok / oom / error, the timing when ok, the
    derived ``metrics``, ``error`` (type, message) otherwise, and notes on what ran."""

    status: str
    batch_size: int
    precision: str
    precision_ran: str
    seq_len: int | None = None
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    timing: Timing | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    error: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)


def require_example_batch(encoder: Any, label: str) -> None:
    """Raise :class:`OptionError` naming the encoder when it cannot build its own synthetic input."""
    if not isinstance(encoder, ExampleBatch):
        raise OptionError(f"encoder {label!r} cannot be timed: it has no example_batch(batch_size, *, seq_len, "
                          "device) method to build a synthetic input on the device (see "
                          "benchmark.specs.ExampleBatch); encoders built on TorchImageEncoder or HFTextEncoder "
                          "have one")


def shapes_of(batch: Any) -> dict[str, list[int]]:
    """The shapes of a tensor batch (``{"x": [...]}``) or of a dict of tensors."""
    if isinstance(batch, torch.Tensor):
        return {"x": list(batch.shape)}
    if isinstance(batch, Mapping):
        return {str(k): list(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    return {}


def seq_len_of(batch: Any) -> int | None:
    """The sequence length of a text batch (``input_ids``' second dimension), None for other inputs."""
    ids = batch.get("input_ids") if isinstance(batch, Mapping) else None
    return int(ids.shape[1]) if isinstance(ids, torch.Tensor) and ids.dim() == 2 else None


def _channels_last(batch: Any, notes: list[str]) -> Any:
    if isinstance(batch, torch.Tensor) and batch.dim() == 4:
        return batch.contiguous(memory_format=torch.channels_last)
    notes.append("channels_last not applied to the input: it is not a 4-D tensor")
    return batch


def encoder_flops(encoder: Any, settings: ThroughputSettings) -> tuple[FlopCount | None, int, str | None]:
    """(count, batch it was counted at, why not) for the encoder's eager fp32 forward at the smallest batch."""
    batch_size = settings.batch_sizes[0]
    try:
        batch = encoder.example_batch(batch_size, seq_len=settings.seq_len, device=settings.device)
        count = count_flops(encoder.encode, batch)
    except Exception as exc:  # a model FlopCounterMode cannot run: the timings still stand
        devices.free_memory(settings.device)
        return None, batch_size, f"FLOPs not counted ({type(exc).__name__}: {str(exc)[:200]})"
    if count.total == 0:
        return None, batch_size, "FlopCounterMode counted no FLOPs (the work runs outside torch operators?)"
    return count, batch_size, None


def _measured_peak(settings: ThroughputSettings, precision: str) -> tuple[float | None, int | None, str | None]:
    if not settings.matmul_peak:
        return None, None, None
    try:
        flops, n = device_peaks.measured_matmul_peak(settings.device, precision)
    except Exception as exc:
        return None, None, f"matmul peak not measured ({type(exc).__name__}: {str(exc)[:200]})"
    return flops, n, None


def _derive(cell: Measurement, timing: Timing, tokens: int | None, flops: tuple[FlopCount | None, int],
            peaks: Mapping[str, Any]) -> dict[str, Any]:
    """The metrics of a timed cell: rates, tokens/s, FLOPs per sample, achieved FLOP/s and fractions of peak."""
    m: dict[str, Any] = dict(timing.metrics())
    m["tokens_per_s"] = tokens * timing.samples_per_s / cell.batch_size if tokens else None
    count, counted_at = flops
    per_sample = count.total / counted_at if count is not None else None
    achieved = per_sample * timing.samples_per_s if per_sample is not None else None
    m.update(flops_per_sample=per_sample, flops_uncounted=count.uncounted if count is not None else None,
             achieved_flops_per_s=achieved)
    for key, peak in (("fraction_of_peak", peaks.get("peak_flops_per_s")),
                      ("fraction_of_measured_peak", peaks.get("measured_peak_flops_per_s"))):
        m[key] = achieved / peak if achieved is not None and peak else None
    m.update(peaks)
    for key, what in (("fraction_of_peak", "the spec-sheet peak"), ("fraction_of_measured_peak",
                                                                     "the measured matmul peak")):
        if m[key] is not None and m[key] > 1.0:  # a fraction of a peak cannot exceed 1: the peak was undercut
            m[key] = None
            m.setdefault("peak_withheld", []).append(
                f"withheld the fraction of {what}: the cell ran faster than it (a peak measured on a busy "
                "device, or FLOPs over-counted)")
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in m.items()}


def run_cell(step: Step, cell: Measurement, settings: ThroughputSettings, *, clock: Clock | None = None,
             sync: Callable[[], None] | None = None) -> Timing | None:
    """Time ``step`` for ``cell``; on an out-of-memory error set status ``"oom"``, on any other ``"error"``
    (with the exception's type and message) and return None. The batch size is never changed."""
    sync = sync or devices.synchronizer(settings.device)
    kwargs: dict[str, Any] = {"clock": clock} if clock is not None else {}
    try:
        with torch.inference_mode():
            return time_steps(step, batch_size=cell.batch_size, warmup=settings.warmup, rounds=settings.rounds,
                              steps_per_round=settings.steps_per_round, sync=sync, **kwargs)
    except Exception as exc:
        cell.status = "oom" if devices.is_oom(exc) else "error"
        cell.error = {"type": type(exc).__name__, "message": str(exc)[:2000]}
        if cell.status == "oom":
            cell.notes.append(f"batch size {cell.batch_size} ran out of memory; recorded as is, not shrunk")
    return None


def _build_step(encoder: Any, batch: Any, settings: ThroughputSettings, precision: str) -> Step:
    context, _ = devices.autocast(settings.device, precision)
    fn = encoder.encode
    if settings.compile:
        torch._dynamo.reset()  # a fresh cache per cell: no recompile limit, no guard left from another cell
        fn = torch.compile(encoder.encode, dynamic=False)

    def step() -> Any:
        with context():
            return fn(batch)

    return step


def measure_cell(encoder: Any, batch_size: int, precision: str, settings: ThroughputSettings, *,
                 flops: tuple[FlopCount | None, int], peaks: Mapping[str, Any], clock: Clock | None = None) -> Measurement:
    """Build the input, time it, read the peak memory and derive the metrics of one cell."""
    device = settings.device
    cell = Measurement("ok", batch_size, precision, devices.autocast(device, precision)[1])
    if precision == "fp16" and not devices.is_cuda(device):
        cell.notes.append("fp16 autocast on CPU: few ops have fast fp16 CPU kernels; not representative of GPUs")
    devices.free_memory(device)
    devices.reset_peak_memory(device)
    try:
        batch = encoder.example_batch(batch_size, seq_len=settings.seq_len, device=device)
    except Exception as exc:
        cell.status = "oom" if devices.is_oom(exc) else "error"
        cell.error = {"type": type(exc).__name__, "message": str(exc)[:2000]}
        devices.free_memory(device)
        return cell
    if settings.channels_last:
        batch = _channels_last(batch, cell.notes)
    cell.seq_len, cell.input_shapes = seq_len_of(batch), shapes_of(batch)
    tokens = encoder.count_tokens(batch) if isinstance(encoder, TokenCounting) else None
    if tokens is None and cell.seq_len is not None:
        tokens = cell.seq_len * batch_size
    timing = run_cell(_build_step(encoder, batch, settings, precision), cell, settings, clock=clock)
    del batch
    if timing is None:
        devices.free_memory(device)
        return cell
    cell.timing = timing
    memory, source = devices.peak_memory(device)
    cell.metrics = _derive(cell, timing, tokens, flops, peaks)
    cell.notes += cell.metrics.pop("peak_withheld", [])
    cell.metrics.update(peak_memory_bytes=memory, memory_source=source)
    return cell


def prepare(encoder: Any, settings: ThroughputSettings, label: str | None = None) -> Any:
    """Check the encoder can be timed, move it to the device in eval mode, channels-last when asked."""
    require_example_batch(encoder, label or encoder_name(encoder))
    encoder = place_encoder(encoder, settings.device)
    if settings.channels_last and isinstance(encoder, torch.nn.Module):
        encoder.to(memory_format=torch.channels_last)  # only 4-D parameters change
    return encoder


def describe(cell: Measurement) -> str:
    """One progress line for a cell."""
    head = f"  {cell.precision} batch {cell.batch_size}: "
    if cell.status != "ok" or cell.timing is None:
        return head + f"{cell.status} ({(cell.error or {}).get('message', '')[:120]})"
    return head + f"{cell.timing.samples_per_s:.1f} samples/s, {1000 * cell.timing.median_s:.2f} ms/batch"


def measure_encoder(encoder: Any, settings: ThroughputSettings, *, label: str | None = None, device_name: str = "",
                    clock: Clock | None = None, log: Callable[[str], None] | None = None
                    ) -> tuple[list[Measurement], list[str]]:
    """Every cell of ``settings`` for a loaded encoder (moved to the device here), and notes on the whole run
    (FLOPs not counted, peak not measured); ``log`` gets a line per cell. Raises :class:`OptionError` when
    the encoder has no ``example_batch``."""
    encoder = prepare(encoder, settings, label)
    count, counted_at, why = encoder_flops(encoder, settings)
    notes = [why] if why else []
    cells: list[Measurement] = []
    for precision in settings.precisions:
        measured, n, why_not = _measured_peak(settings, precision)
        notes += [why_not] if why_not else []
        spec, source = device_peaks.spec_peak(device_name, precision, settings.device)
        peaks = {"peak_flops_per_s": spec, "peak_source": source, "measured_peak_flops_per_s": measured,
                 "measured_peak_matmul_n": n}
        for b in settings.batch_sizes:
            cells.append(measure_cell(encoder, b, precision, settings, flops=(count, counted_at), peaks=peaks,
                                      clock=clock))
            if log is not None:
                log(describe(cells[-1]))
    return cells, notes


def params_of(encoder: Any, info: Mapping[str, Any]) -> int | None:
    """Parameters as the encoder's ``info`` states them, else counted on a torch encoder, else None."""
    value = info.get("params")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(encoder, torch.nn.Module):
        return sum(p.numel() for p in encoder.parameters())
    return None
