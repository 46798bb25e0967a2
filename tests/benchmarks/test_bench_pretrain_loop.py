"""The core pretraining loop (``benchmark.methods.trainer.train``) vs a hand-written PyTorch loop doing exactly
the same work: the same method (barlowtwins around a random-init ResNet-18 at 32 px, built from the same seed),
the same views of the same in-memory samples in the same order, the same optimiser and parameter groups, the same
warm-up + cosine schedule, fp32 (no AMP), no online probe, no checkpoints during the run. The hand-written loop's
losses must equal the loop's loss curve bit for bit, which proves the two sides computed the same thing; what
is left between their times is the loop's own overhead (target: the loop's samples/s >= 0.9 x the hand-written
loop's).

Run: ``pytest tests/benchmarks/test_bench_pretrain_loop.py --benchmark-enable -s``. ``REPBENCH_BENCH_SCALE``
(default 0.02) scales the steps per round: 1.0 is 200 steps of batch 32 on digits; ``REPBENCH_BENCH_ROUNDS``
(default 7) the timed rounds. Both sides run in the same process: one untimed warm-up round of each, then
interleaved rounds (the first side alternates, A B, B A, ..., so drift in the machine's load hits both alike).
Each round's ratio is ``hand_s / loop_s`` over the steps (the loop's ``TrainResult.seconds``: its data loader
and steps, without building the model or the final checkpoint; the hand-written loop timed over the same
region); the median ratio is reported with its spread (min, quartiles, max), and the ratio of whole calls
(final checkpoint included) beside it. With benchmarks disabled it runs one round as a plain test.
"""

from __future__ import annotations

import math
import os
import statistics
import time

import torch

from benchmark.catalog import Catalog
from benchmark.methods.budget import parse_budget
from benchmark.methods.runs import trainable_backbone
from benchmark.methods.trainer import train
from benchmark.runtime.training import (
    EpochBatches,
    ViewsDataset,
    build_optimizer,
    derive_seed,
    lr_multiplier,
    own_rng,
    set_lr,
)
from benchmark.specs import Split

SCALE = float(os.environ.get("REPBENCH_BENCH_SCALE", "0.02"))
ROUNDS = int(os.environ.get("REPBENCH_BENCH_ROUNDS", "7"))
BATCH = 32
SEED = 0
METHOD = "barlowtwins[proj_dim=256]"


def _build(catalog):
    torch.manual_seed(0)
    backbone = trainable_backbone(catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=32]"), "cpu")
    resolved = catalog.resolve("methods", METHOD)
    method = resolved.spec.build(backbone, **resolved.options)
    assert not method.momentum_pairs and not hasattr(method.objective, "before_step")  # nothing else to mirror
    return method, backbone


def _hand_written(method, data: Split, steps: int) -> tuple[list[float], float]:
    """What a user would write by hand for the same work: a DataLoader of views over a seeded shuffled order,
    then per step the lr, forward, zero_grad, backward, (clip,) step. Returns the losses and the seconds from
    the loader's creation to the last step (the region the loop's ``TrainResult.seconds`` covers)."""
    d = method.defaults
    objective = method.objective.train()
    params = [p for p in objective.parameters() if p.requires_grad]
    optimizer = build_optimizer(params, d.optimizer, d.lr * BATCH / d.reference_batch, d.weight_decay, d.momentum)
    per_epoch, warmup = len(data) // BATCH, round(d.warmup_fraction * steps)
    losses: list[float] = []
    with own_rng(torch.device("cpu"), SEED):
        start = time.perf_counter()
        loader = torch.utils.data.DataLoader(
            ViewsDataset(data, method.views, "barlowtwins"), batch_sampler=EpochBatches(len(data), BATCH, per_epoch,
                                                                                        SEED, 0),
            generator=torch.Generator().manual_seed(derive_seed(SEED, 0, 0, 1)))  # workers' seeds, as the loop
        for k, (views, _) in enumerate(loader):
            set_lr(optimizer, lr_multiplier(k, steps, warmup))
            loss = objective(views, None)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if d.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, d.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            if k + 1 == steps:
                break
        return losses, time.perf_counter() - start


def _quartiles(values: list[float]) -> tuple[float, float, float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return min(values), q1, q2, q3, max(values)


def test_pretrain_loop_vs_hand_written_loop(benchmark, tmp_path):
    catalog = Catalog.load()
    digits = catalog.resolve("datasets", "digits").load().split("train")
    steps = max(3, int(200 * SCALE))
    n = BATCH * min(steps, 20)
    data = Split(list(digits.samples[:n]), digits.labels[:n])  # in memory: both sides read the same objects
    rounds = ROUNDS if benchmark.enabled else 1
    t_loop, t_call, t_hand = [], [], []

    def loop_side(r: int) -> None:
        method, backbone = _build(catalog)
        start = time.perf_counter()
        result = train(method, backbone, data, budget=parse_budget(f"{steps}steps"), workdir=tmp_path / f"r{r}",
                       config_digest="bench", batch_size=BATCH, precision="fp32", checkpoint_every_s=None,
                       seed=SEED, method_name="barlowtwins", watch=None, log=None)
        if r >= 0:
            t_call.append(time.perf_counter() - start)
            t_loop.append(result.seconds)
        assert result.steps == steps
        loop_losses[:] = result.loss_curve

    def hand_side(r: int) -> None:
        method, _ = _build(catalog)
        losses, seconds = _hand_written(method, data, steps)
        if r >= 0:
            t_hand.append(seconds)
        hand_losses[:] = losses

    loop_losses: list[float] = []
    hand_losses: list[float] = []
    if benchmark.enabled:  # warm-up, untimed: first-call costs (allocator, kernels, imports) on neither side
        loop_side(-1)
        hand_side(-1)
    for r in range(rounds):
        for side in ((loop_side, hand_side) if r % 2 == 0 else (hand_side, loop_side)):
            side(r)
        assert hand_losses == loop_losses and all(math.isfinite(v) for v in loop_losses)  # the same work
        print(f"[pretrain loop] round {r + 1}/{rounds}: loop {t_loop[-1]:.2f} s, hand-written {t_hand[-1]:.2f} s, "
              f"ratio {t_hand[-1] / t_loop[-1]:.3f}", flush=True)
    ratios = [h / loop for h, loop in zip(t_hand, t_loop, strict=True)]
    call_ratios = [h / c for h, c in zip(t_hand, t_call, strict=True)]
    lo, q1, median, q3, hi = _quartiles(ratios)
    samples = steps * BATCH
    benchmark.extra_info.update({
        "steps": steps, "batch": BATCH, "rounds": rounds, "ratios_hand_over_loop": [round(x, 4) for x in ratios],
        "median_ratio": round(median, 4), "ratio_min": round(lo, 4), "ratio_q1": round(q1, 4),
        "ratio_q3": round(q3, 4), "ratio_max": round(hi, 4),
        "median_ratio_whole_call": round(statistics.median(call_ratios), 4),
        "loop_samples_per_s": samples / statistics.median(t_loop),
        "hand_samples_per_s": samples / statistics.median(t_hand)})
    print(f"\n[pretrain loop] {rounds} rounds of {steps} steps of {BATCH}: loop "
          f"{samples / statistics.median(t_loop):.1f} samples/s, hand-written "
          f"{samples / statistics.median(t_hand):.1f} samples/s (medians); ratio hand_s/loop_s median "
          f"{median:.3f} (min {lo:.3f}, quartiles {q1:.3f}-{q3:.3f}, max {hi:.3f}); whole calls with the final "
          f"checkpoint: median {statistics.median(call_ratios):.3f}")


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
