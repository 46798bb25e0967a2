"""Extraction through the harness vs a raw torch loop over the same model and batches (target ratio >= 0.95).

Run: ``pytest tests/benchmarks/test_bench_extraction.py --benchmark-enable``. ``REPBENCH_BENCH_SCALE`` (default
0.02) scales the number of images: 1.0 is 2,048 digits images at 64 px through a random-init ResNet-18.
Both sides are timed in the same process, interleaved, best of several rounds; the ratio is
``raw_s / harness_s`` (1.0: the harness adds nothing). With benchmarks disabled it runs once as a plain test
and checks the two give identical features.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from benchmark.features import best_device, extract, place_encoder
from benchmark.testing import catalog_with

SCALE = float(os.environ.get("REPBENCH_BENCH_SCALE", "0.02"))
BATCH = 64


def _raw_loop(encoder, images, device):
    """What a user would write by hand: transform, stack, forward, copy back."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), BATCH):
            x = torch.stack([encoder.transform(im.convert("RGB")) for im in images[start:start + BATCH]])
            out.append(encoder.backbone(x.to(device)).flatten(1).float().cpu().numpy())
    return np.concatenate(out)


def test_harness_extraction_vs_raw_loop(benchmark):
    catalog = catalog_with()
    device = best_device()
    digits = catalog.resolve("datasets", "digits").load()
    pool = list(digits.split("train").samples) + list(digits.split("test").samples)
    n = max(BATCH * 2, int(2048 * SCALE))
    images = (pool * (n // len(pool) + 1))[:n]
    encoder = place_encoder(catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=64]").load(), device)

    ours = extract(encoder, images, device=device, batch_size=BATCH)
    np.testing.assert_allclose(ours, _raw_loop(encoder, images, device), rtol=1e-4, atol=1e-5)

    rounds = 3 if benchmark.enabled else 1
    t_ours, t_raw = [], []
    for _ in range(rounds):  # interleaved so that drift in machine load hits both sides alike
        start = time.perf_counter()
        extract(encoder, images, device=device, batch_size=BATCH)
        t_ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        _raw_loop(encoder, images, device)
        t_raw.append(time.perf_counter() - start)
    ratio = min(t_raw) / min(t_ours)
    benchmark.extra_info.update({"images": n, "device": device, "harness_s": min(t_ours), "raw_s": min(t_raw),
                                 "ratio_raw_over_harness": round(ratio, 3)})
    print(f"\n[extraction] {n} images on {device}: harness {n / min(t_ours):.0f} img/s, "
          f"raw loop {n / min(t_raw):.0f} img/s, ratio {ratio:.3f}")
    benchmark.pedantic(extract, args=(encoder, images), kwargs={"device": device, "batch_size": BATCH}, rounds=1)


def _forward_only(encoder, x, batches):
    """The limit: the model alone on a synthetic batch already on the device."""
    with torch.inference_mode():
        for _ in range(batches):
            encoder.backbone(x)
        if x.is_cuda:
            torch.cuda.synchronize()


def test_loader_workers_vs_serial_and_forward_only_at_224px(benchmark):
    """224 px (timm's default preprocessing of 500x375 JPEG-sized images): serial preprocessing vs DataLoader
    workers, both against forward-only throughput of the same model and batch. Features must be identical."""
    from PIL import Image

    catalog = catalog_with()
    device = best_device()
    workers = max(1, min(8, (os.cpu_count() or 2) - 1))
    rng = np.random.default_rng(0)
    n = max(BATCH * 2, int(1024 * SCALE))
    images = [Image.fromarray(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)) for _ in range(n)]
    encoder = place_encoder(catalog.resolve("encoders", "timm/resnet18[pretrained=false]").load(), device)
    serial = extract(encoder, images, device=device, batch_size=BATCH)
    assert np.array_equal(extract(encoder, images, device=device, batch_size=BATCH, workers=workers), serial)
    x = torch.randn(BATCH, 3, 224, 224, device=device)
    rounds = 3 if benchmark.enabled else 1
    times: dict[str, list[float]] = {"serial": [], "workers": [], "forward": []}
    for _ in range(rounds):
        for key, run in (("serial", lambda: extract(encoder, images, device=device, batch_size=BATCH)),
                         ("workers", lambda: extract(encoder, images, device=device, batch_size=BATCH,
                                                     workers=workers)),
                         ("forward", lambda: _forward_only(encoder, x, n // BATCH))):
            start = time.perf_counter()
            run()
            times[key].append(time.perf_counter() - start)
    rate = {"serial": n / min(times["serial"]), "workers": n / min(times["workers"]),
            "forward": (n // BATCH) * BATCH / min(times["forward"])}
    benchmark.extra_info.update({k: round(v, 1) for k, v in rate.items()} | {"workers": workers, "device": device})
    print(f"\n[extraction 224px] {n} images on {device}: serial {rate['serial']:.0f} img/s, {workers} workers "
          f"{rate['workers']:.0f} img/s, forward-only {rate['forward']:.0f} img/s; workers/forward "
          f"{rate['workers'] / rate['forward']:.2f}, serial/forward {rate['serial'] / rate['forward']:.2f}")
    benchmark.pedantic(lambda: None, rounds=1)
