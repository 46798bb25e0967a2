"""``repbench throughput``'s timing vs a raw timm-style loop over the same model, batch and input (goal: the
ratio of their samples/s within 5% of 1).

Run: ``pytest tests/benchmarks/test_bench_throughput.py --benchmark-enable -s``. A random-init ResNet-18 at batch
16 (64 px on CPU, 224 px on CUDA) is timed both ways in the same process, interleaved ``REPS`` times (5 with
benchmarks enabled, 1 without) so drift in machine load hits both sides alike. Ours is one cell of
:func:`benchmark.throughput.measure.measure_cell` (warm-up, synchronised rounds, median round); the raw loop is
timm's ``benchmark.py`` method: warm-up, then ``steps`` forward passes under ``no_grad`` between two
synchronisations, samples / elapsed. The ratio is ``median(ours) / median(raw)`` over the repetitions.
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmark.features import best_device
from benchmark.runtime.devices import synchronizer
from benchmark.testing import catalog_with
from benchmark.throughput.measure import ThroughputSettings, measure_cell, prepare

BATCH, WARMUP, ROUNDS = 16, 2, 5


def _raw_loop(model: torch.nn.Module, x: torch.Tensor, steps: int, device: str) -> float:
    """timm benchmark.py style: warm-up, then ``steps`` forward passes between synchronisations; samples/s."""
    sync = synchronizer(device)
    with torch.no_grad():
        for _ in range(WARMUP):
            model(x)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            model(x)
        sync()
        return steps * x.shape[0] / (time.perf_counter() - start)


def test_throughput_timing_vs_raw_timm_loop(benchmark):
    device = best_device()
    px, steps_per_round = (224, 20) if device.startswith("cuda") else (64, 2)
    settings = ThroughputSettings(batch_sizes=(BATCH,), device=device, warmup=WARMUP, rounds=ROUNDS,
                        steps_per_round=steps_per_round, matmul_peak=False)
    encoder = catalog_with().resolve("encoders", f"timm/resnet18[pretrained=false,img_size={px}]").load()
    encoder = prepare(encoder, settings)
    x = encoder.example_batch(BATCH, device=device)

    def ours() -> float:
        cell = measure_cell(encoder, BATCH, "fp32", settings, flops=(None, BATCH), peaks={})
        assert cell.status == "ok" and cell.timing is not None, cell.error
        return cell.timing.samples_per_s

    reps = 5 if benchmark.enabled else 1
    s_ours, s_raw = [], []
    for _ in range(reps):
        s_ours.append(ours())
        s_raw.append(_raw_loop(encoder.backbone, x, ROUNDS * steps_per_round, device))
    ratio = statistics.median(s_ours) / statistics.median(s_raw)
    best = max(s_ours) / max(s_raw)
    benchmark.extra_info.update({"device": device, "px": px, "batch": BATCH, "ours_samples_per_s": s_ours,
                                 "raw_samples_per_s": s_raw, "ratio_median": round(ratio, 3),
                                 "ratio_best": round(best, 3)})
    print(f"\n[throughput] resnet18 {px}px batch {BATCH} on {device}: repbench {statistics.median(s_ours):.1f} "
          f"samples/s, raw timm-style loop {statistics.median(s_raw):.1f} samples/s, ratio {ratio:.3f} "
          f"(best-of ratio {best:.3f}, {reps} interleaved repetitions)")
    assert ratio > 0
    benchmark.pedantic(ours, rounds=1)
