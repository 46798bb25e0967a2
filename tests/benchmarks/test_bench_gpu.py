"""The GPU figures (issue #9 §5): run on a CUDA machine with ``tox -e gpu`` or ``scripts/gpu_check.sh``; every test
here is marked ``gpu`` and skips, saying why, without a GPU. Sized to finish in a few minutes on an H200.

- throughput of random-init timm ResNet-50 and ViT-S/16 (224 px) at bf16, batch 256, through ``repbench
  throughput``'s own run (a fresh worker process per model, warm-up excluded, synchronised rounds);
- extraction at 224 px: the harness (DataLoader workers decoding 500x375 JPEGs, timm's preprocessing, pinned
  memory) against forward-only throughput of the same ResNet-50 on a synthetic on-device batch, bf16 and fp32,
  with the default worker count and one worker per spare core (goal: >= 0.9 of forward-only);
- the kNN and linear protocols' solvers on CUDA against the CPU on the same features: times and agreement.

Each figure is printed as one ``[gpu] ...`` line and, when ``REPBENCH_FIGURES`` names a file, appended to it as
a JSON line.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmark.features import extract, place_encoder
from benchmark.features.extract import default_workers
from benchmark.testing import catalog_with

pytestmark = pytest.mark.gpu  # skipped without CUDA (tests/conftest.py)

BATCH = 256


def figure(name: str, **values) -> None:
    """Print one figure line and append it to ``$REPBENCH_FIGURES`` (JSON lines) when that is set."""
    shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
    print(f"\n[gpu] {name}: {shown}", flush=True)
    path = os.environ.get("REPBENCH_FIGURES")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps({"figure": name, "device_name": torch.cuda.get_device_name(), **values}) + "\n")


def test_gpu_throughput_resnet50_and_vit_small_at_bf16():
    from benchmark.throughput.measure import ThroughputSettings
    from benchmark.throughput.run import run_throughput

    resnet50 = "timm/resnet50[pretrained=false]"
    settings = ThroughputSettings(batch_sizes=(BATCH,), precisions=("bf16",), device="cuda")
    results = os.environ.get("REPBENCH_GPU_RESULTS")
    runs = [run_throughput(catalog_with(), [resnet50, "timm/vit_small_patch16_224[pretrained=false]"], settings,
                           results_dir=results),
            # channels-last too, as timm's published ResNet numbers are measured
            run_throughput(catalog_with(), [resnet50], replace(settings, channels_last=True), results_dir=results)]
    records = [r for run in runs for r in run.records]
    assert not any(run.failures for run in runs), [(f.label, f.type, f.message) for run in runs for f in run.failures]
    assert len(records) == 3
    for rec in records:
        assert rec.status == "ok", rec.error
        m = rec.metrics
        layout = " channels-last" if rec.channels_last else ""
        figure(f"throughput {rec.label} bf16{layout} batch {BATCH}", samples_per_s=m["samples_per_s"],
               ms_per_batch=m["ms_per_batch"], peak_memory_mib=m["peak_memory_bytes"] / 2**20,
               gflops_per_sample=(m.get("flops_per_sample") or 0) / 1e9,
               achieved_tflops=(m.get("achieved_flops_per_s") or 0) / 1e12,
               fraction_of_peak=m.get("fraction_of_peak"), fraction_of_matmul_peak=m.get("fraction_of_measured_peak"))


class Jpegs(Sequence):
    """500x375 JPEGs (ImageNet's typical size) decoded on access, as an image folder's files would be."""

    def __init__(self, blobs: list[bytes], n: int) -> None:
        self.blobs, self.n = blobs, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        from PIL import Image

        return Image.open(io.BytesIO(self.blobs[i % len(self.blobs)])).convert("RGB")


def _jpegs(n: int, distinct: int = 64) -> Jpegs:
    from PIL import Image

    rng = np.random.default_rng(0)
    blobs = []
    for _ in range(distinct):  # smooth content (upsampled noise) compresses and decodes like a photo
        small = Image.fromarray(rng.integers(0, 255, (47, 63, 3), dtype=np.uint8))
        buf = io.BytesIO()
        small.resize((500, 375), Image.BILINEAR).save(buf, format="JPEG", quality=90)
        blobs.append(buf.getvalue())
    return Jpegs(blobs, n)


def _forward_only(encoder, precision: str, batches: int) -> float:
    """Samples/s of ``encoder.encode`` alone on a synthetic batch already on the GPU (the limit)."""
    x = encoder.example_batch(BATCH, device="cuda")
    dtype = {"bf16": torch.bfloat16}.get(precision)
    with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
        for _ in range(3):
            encoder.encode(x)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            encoder.encode(x)
        torch.cuda.synchronize()
    return batches * BATCH / (time.perf_counter() - start)


def test_gpu_extraction_vs_forward_only_resnet50_224px():
    encoder = place_encoder(catalog_with().resolve("encoders", "timm/resnet50[pretrained=false]").load(), "cuda")
    n = 16 * BATCH
    images = _jpegs(n)
    few = _jpegs(2 * BATCH)
    counts = sorted({default_workers("cuda"), max(1, (os.cpu_count() or 2) - 1)})
    check = extract(encoder, few, device="cuda", batch_size=BATCH, workers=0)
    assert np.allclose(extract(encoder, few, device="cuda", batch_size=BATCH, workers=counts[-1]), check,
                       rtol=1e-4, atol=1e-4)
    for precision in ("bf16", "fp32"):
        forward = _forward_only(encoder, precision, batches=n // BATCH)
        for workers in counts:
            extract(encoder, few, device="cuda", batch_size=BATCH, precision=precision, workers=workers)  # warm-up
            torch.cuda.synchronize()
            start = time.perf_counter()
            feats = extract(encoder, images, device="cuda", batch_size=BATCH, precision=precision, workers=workers)
            harness = n / (time.perf_counter() - start)
            assert feats.shape == (n, 2048) and np.isfinite(feats).all()
            figure(f"extraction resnet50 224px {precision} workers={workers}", images=n, harness_img_s=harness,
                   forward_only_img_s=forward, ratio=harness / forward, goal=0.9)


def _clustered(n: int, dim: int, classes: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    centres = np.random.default_rng(1234).normal(size=(classes, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % classes)
    return centres[y] + noise * rng.standard_normal((n, dim), dtype=np.float32), y


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def test_gpu_knn_and_linear_on_cuda_vs_cpu():
    from benchmark.protocols.logreg import fit_logreg
    from benchmark.protocols.neighbors import knn_classify

    train_x, train_y = _clustered(50_000, 768, 100, noise=3.0, seed=0)
    test_x, _ = _clustered(10_000, 768, 100, noise=3.0, seed=1)
    knn_classify(train_x[:1000], train_y[:1000], test_x[:100], [20], device="cuda")  # CUDA context, kernels
    gpu, gpu_s = _timed(knn_classify, train_x, train_y, test_x, [10, 20, 100, 200], device="cuda")
    cpu, cpu_s = _timed(knn_classify, train_x, train_y, test_x, [10, 20, 100, 200], device="cpu")
    agree = float((gpu.predictions[20] == cpu.predictions[20]).mean())
    assert agree >= 0.999
    figure("knn 50k x 10k x 768, k=10,20,100,200", cuda_s=gpu_s, cpu_s=cpu_s, speedup=cpu_s / gpu_s,
           agreement=agree, cpu_threads=torch.get_num_threads())

    x, y = _clustered(25_000, 768, 100, noise=8.0, seed=2)
    fit_logreg(x[:500], y[:500], 1.0, max_iter=5, device="cuda")  # warm-up
    gpu_m, gpu_s = _timed(fit_logreg, x[:20_000], y[:20_000], 0.01, device="cuda")
    cpu_m, cpu_s = _timed(fit_logreg, x[:20_000], y[:20_000], 0.01, device="cpu")
    acc_gpu = float((gpu_m.predict(x[20_000:]) == y[20_000:]).mean())
    acc_cpu = float((cpu_m.predict(x[20_000:]) == y[20_000:]).mean())
    assert abs(acc_gpu - acc_cpu) <= 0.005
    figure("linear 20k x 768 x 100 classes, C=0.01", cuda_s=gpu_s, cpu_s=cpu_s, speedup=cpu_s / gpu_s,
           top1_cuda=acc_gpu, top1_cpu=acc_cpu, iters_cuda=gpu_m.n_iter, iters_cpu=cpu_m.n_iter)
