"""The core pretraining loop (``benchmark.methods.trainer.train``) vs a hand-written PyTorch loop doing the same
work: the same method (barlowtwins around a random-init ResNet-18 at 32 px), views, batch, optimiser and cosine
schedule (target ratio >= 0.9).

Run: ``pytest tests/benchmarks/test_bench_pretrain_loop.py --benchmark-enable``. ``REPBENCH_BENCH_SCALE`` (default
0.02) scales the number of steps: 1.0 is 200 steps of batch 32 on digits. Both sides run in the same process,
interleaved, best of several rounds; the ratio is ``raw_s / loop_s`` (1.0: the loop adds nothing; its final
checkpoint is part of its time). With benchmarks disabled it runs once as a plain test.
"""

from __future__ import annotations

import math
import os
import time

import torch

from benchmark.catalog import Catalog
from benchmark.methods.budget import parse_budget
from benchmark.methods.runs import trainable_backbone
from benchmark.methods.trainer import train
from benchmark.specs import Split

SCALE = float(os.environ.get("REPBENCH_BENCH_SCALE", "0.02"))
BATCH = 32
METHOD = "barlowtwins[proj_dim=256]"


class _Views(torch.utils.data.Dataset):
    def __init__(self, samples, views) -> None:
        self.samples, self.views = samples, views

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.views(self.samples[i])


def _build(catalog):
    torch.manual_seed(0)
    backbone = trainable_backbone(catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=32]"), "cpu")
    resolved = catalog.resolve("methods", METHOD)
    return resolved.spec.build(backbone, **resolved.options), backbone


def _raw_loop(method, samples, steps: int) -> list[float]:
    """What a user would write by hand: a shuffled DataLoader of views, SGD-like steps with a cosine lr."""
    from benchmark.runtime.training import LARS

    objective = method.objective.train()
    params = [p for p in objective.parameters() if p.requires_grad]
    lr = method.defaults.lr * BATCH / method.defaults.reference_batch
    optimizer = LARS(params, lr=lr, momentum=method.defaults.momentum, weight_decay=method.defaults.weight_decay)
    loader = torch.utils.data.DataLoader(_Views(samples, method.views), batch_size=BATCH, shuffle=True,
                                         drop_last=True)
    losses: list[float] = []
    while len(losses) < steps:
        for views in loader:
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * len(losses) / steps))
            loss = objective(views)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            if len(losses) == steps:
                break
    return losses


def test_pretrain_loop_vs_hand_written_loop(benchmark, tmp_path):
    catalog = Catalog.load()
    digits = catalog.resolve("datasets", "digits").load().split("train")
    steps = max(3, int(200 * SCALE))
    n = BATCH * min(steps, 20)
    data = Split(list(digits.samples[:n]), digits.labels[:n])
    rounds = 3 if benchmark.enabled else 1
    t_loop, t_train, t_raw = [], [], []
    for r in range(rounds):  # interleaved so that drift in machine load hits both sides alike
        method, backbone = _build(catalog)
        start = time.perf_counter()
        result = train(method, backbone, data, budget=parse_budget(f"{steps}steps"), workdir=tmp_path / f"r{r}",
                       config_digest="bench", batch_size=BATCH, checkpoint_every_s=None, method_name="barlowtwins")
        t_loop.append(time.perf_counter() - start)
        t_train.append(result.seconds)  # the steps alone: no model building, no final checkpoint
        assert result.steps == steps and all(math.isfinite(v) for v in result.loss_curve)
        method, _ = _build(catalog)
        start = time.perf_counter()
        losses = _raw_loop(method, data.samples, steps)
        t_raw.append(time.perf_counter() - start)
        assert len(losses) == steps and all(math.isfinite(v) for v in losses)
    ratio = min(t_raw) / min(t_loop)
    samples = steps * BATCH
    benchmark.extra_info.update({"steps": steps, "batch": BATCH, "loop_s": min(t_loop), "raw_s": min(t_raw),
                                 "loop_steps_s": min(t_train), "ratio_raw_over_loop_steps": round(min(t_raw) / min(t_train), 3),
                                 "loop_samples_per_s": samples / min(t_loop), "raw_samples_per_s": samples / min(t_raw),
                                 "ratio_raw_over_loop": round(ratio, 3)})
    print(f"\n[pretrain loop] {steps} steps of {BATCH}: loop {samples / min(t_loop):.1f} samples/s, hand-written "
          f"{samples / min(t_raw):.1f} samples/s, ratio {ratio:.3f} (steps alone: {min(t_raw) / min(t_train):.3f})")


def test_mae_encoder_on_the_visible_patches_vs_a_full_forward(benchmark):
    """MAE's encoder runs on the 25% visible patches only: forward + backward of ViT-tiny (32 px, 4 px patches)
    on them against the full token set (the paper's point: about 3-4x less work for the encoder)."""
    import timm

    from benchmark.methods.mae import random_masking
    from benchmark.methods.vit import encode_visible

    torch.manual_seed(0)
    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=4)
    batch = 64 if benchmark.enabled else 8
    x = torch.randn(batch, 3, 32, 32)
    keep, _, _ = random_masking(batch, 64, 0.75, torch.device("cpu"))
    assert torch.allclose(encode_visible(vit, x), vit.forward_features(x), atol=1e-5)  # all kept: the same
    rounds = 5 if benchmark.enabled else 1
    t_full, t_visible = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        vit.forward_features(x).sum().backward()
        t_full.append(time.perf_counter() - start)
        start = time.perf_counter()
        encode_visible(vit, x, keep).sum().backward()
        t_visible.append(time.perf_counter() - start)
    speedup = min(t_full) / min(t_visible)
    benchmark.extra_info.update({"batch": batch, "full_s": min(t_full), "visible_s": min(t_visible),
                                 "speedup": round(speedup, 2)})
    print(f"\n[mae encoder] batch {batch}: full {min(t_full) * 1e3:.0f} ms, visible patches "
          f"{min(t_visible) * 1e3:.0f} ms, speed-up {speedup:.2f}x")
