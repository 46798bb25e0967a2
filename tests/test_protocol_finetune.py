"""The finetune protocol against a hand-written reference loop, plus budgets, determinism and test-set isolation."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.datasets.base import InMemoryDataset
from benchmark.protocols import finetune as plugin
from benchmark.protocols.finetune import (
    FinetuneConfig,
    epoch_batches,
    finetune,
    image_augmenter,
    lr_multiplier,
    plan_steps,
    random_resized_crop,
)
from benchmark.specs import Split
from benchmark.testing import blobs, catalog_with


class VecEncoder(torch.nn.Module):
    """A small MLP "encoder" over fixed feature vectors (samples are 1-D float32 arrays)."""

    modality = "image"

    def __init__(self, dim_in: int, dim_out: int = 12, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(dim_in, dim_out), torch.nn.LayerNorm(dim_out),
                                       torch.nn.ReLU())
        self.embed_dim = dim_out

    def preprocess(self, samples):
        return torch.from_numpy(np.stack(samples))

    def encode(self, batch):
        return self.net(batch)


class NumpyEncoder:
    """Neither a module nor parameterised: features are numpy arrays (like a static embedding table)."""

    modality = "image"
    embed_dim = 6

    def preprocess(self, samples):
        return np.stack(samples)

    def encode(self, batch):
        return np.tanh(batch[:, :6])


class TinyCNN(torch.nn.Module):
    """A conv encoder over grayscale PIL images, with BatchNorm and dropout (train/eval mode matters)."""

    modality = "image"
    embed_dim = 8

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                       torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.AdaptiveAvgPool2d(1),
                                       torch.nn.Flatten())

    def preprocess(self, samples):
        return torch.stack([torch.from_numpy(np.asarray(s, np.float32) / 255.0)[None] for s in samples])

    def encode(self, batch):
        return self.net(batch)


class DataTask:
    """A minimal EvalTask over a Dataset and an encoder factory (fine-tuning needs no cached features)."""

    def __init__(self, dataset, make_encoder, seed: int = 0, num_classes: int | None = None) -> None:
        self.dataset, self._make, self.seed, self.device = dataset, make_encoder, seed, "cpu"
        self.encoder_name = "test"
        self.num_classes = num_classes or len(dataset.classes)
        self.encoder = None

    def has_split(self, split: str) -> bool:
        return split in self.dataset.splits

    def features(self, split):
        raise AssertionError("finetune must not use cached frozen features")

    def load_encoder(self):
        self.encoder = self._make()
        return self.encoder


def vec_splits(n_per_class=40, n_classes=3, dim=8, spread=1.0, seed=0) -> dict[str, Split]:
    x, y = blobs(n_per_class, n_classes, dim, seed=seed, spread=spread)
    parts = np.array_split(np.arange(len(y)), [len(y) * 6 // 10, len(y) * 8 // 10])
    return {k: Split(list(x[i]), y[i]) for k, i in zip(("train", "val", "test"), parts, strict=True)}


def vec_dataset(splits: dict[str, Split], n_classes: int = 3) -> InMemoryDataset:
    return InMemoryDataset("vec", "image", [str(i) for i in range(n_classes)], lambda: splits, {},
                           tuple(splits))


def reference_loop(encoder, splits, num_classes, cfg: FinetuneConfig, seed):
    """An independent plain-torch implementation of the documented contract, written without the protocol code."""
    torch.manual_seed(seed)
    head = torch.nn.Linear(encoder.embed_dim, num_classes)
    order = np.random.default_rng(seed)
    train, val, test = splits["train"], splits["val"], splits["test"]
    x_tr, y_tr = torch.tensor(np.stack(train.samples)), torch.tensor(train.labels)
    per_epoch = len(y_tr) // cfg.batch_size
    total = per_epoch * cfg.epochs if cfg.steps is None else min(per_epoch * cfg.epochs, cfg.steps)
    warm = round(cfg.warmup_fraction * total)
    params = list(encoder.parameters()) + list(head.parameters())
    enc_w = [p for p in encoder.parameters() if p.ndim > 1]
    enc_b = [p for p in encoder.parameters() if p.ndim == 1]
    opt = torch.optim.AdamW([
        {"params": enc_w, "lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": enc_b, "lr": cfg.lr, "weight_decay": 0.0},
        {"params": [head.weight], "lr": cfg.head_lr, "weight_decay": cfg.weight_decay},
        {"params": [head.bias], "lr": cfg.head_lr, "weight_decay": 0.0},
    ], betas=(cfg.beta1, cfg.beta2))
    bases = [cfg.lr, cfg.lr, cfg.head_lr, cfg.head_lr]

    def accuracy(split):
        encoder.eval()
        head.eval()
        with torch.no_grad():
            logits = head(encoder.encode(torch.tensor(np.stack(split.samples))))
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(split.labels)).item()
        return logits.argmax(1).numpy(), (float((logits.argmax(1).numpy() == split.labels).mean()), -loss)

    t, losses, curve, best, best_key = 0, [], [], None, (-1.0, 0.0)
    for _epoch in range(cfg.epochs):
        perm = order.permutation(len(y_tr))
        encoder.train()
        head.train()
        for b in range(per_epoch):
            if t == total:
                break
            m = (t + 1) / warm if t < warm else 0.5 * (1 + math.cos(math.pi * (t - warm) / (total - warm)))
            for group, base in zip(opt.param_groups, bases, strict=True):
                group["lr"] = base * m
            idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            loss = torch.nn.functional.cross_entropy(head(encoder.encode(x_tr[idx])), y_tr[idx],
                                                     label_smoothing=cfg.label_smoothing)
            opt.zero_grad()
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            losses.append(loss.item())
            t += 1
        curve.append(accuracy(val)[1])
        if curve[-1] > best_key:  # best accuracy, ties to the lower val loss
            best_key, best = curve[-1], (copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()))
        if t == total:
            break
    encoder.load_state_dict(best[0])
    head.load_state_dict(best[1])
    return {"losses": losses, "curve": curve, "head": head, "predictions": accuracy(test)[0]}


def test_lr_multiplier_is_linear_warmup_then_cosine():
    assert [lr_multiplier(t, 10, 4) for t in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_multiplier(4, 10, 4) == 1.0
    assert lr_multiplier(7, 10, 4) == pytest.approx(0.5)
    assert lr_multiplier(9, 10, 4) == pytest.approx(0.5 * (1 + math.cos(math.pi * 5 / 6)))
    assert lr_multiplier(0, 5, 0) == 1.0


def test_plan_steps_and_batches():
    assert plan_steps(100, FinetuneConfig(epochs=3, batch_size=32, warmup_fraction=0.1)) == (3, 9, 1)
    assert plan_steps(100, FinetuneConfig(epochs=3, batch_size=32, steps=4)) == (3, 4, 0)
    assert plan_steps(10, FinetuneConfig(epochs=2, batch_size=32)) == (1, 2, 0)
    batches = epoch_batches(10, 4, np.random.default_rng(0))
    assert [len(b) for b in batches] == [4, 4]  # the partial batch is dropped
    assert sorted(np.concatenate(epoch_batches(3, 4, np.random.default_rng(0)))) == [0, 1, 2]


def test_matches_hand_written_reference_loop():
    splits = vec_splits(n_per_class=40, spread=2.5, seed=3)
    cfg = FinetuneConfig(epochs=6, batch_size=16, lr=3e-2, head_lr=0.3, weight_decay=0.1, warmup_fraction=0.2,
                         label_smoothing=0.1, grad_clip=1.0)
    enc = VecEncoder(8, seed=1)
    enc_ref = copy.deepcopy(enc)
    got = finetune(enc, splits["train"], splits["val"], splits["test"], 3, cfg, seed=5)
    want = reference_loop(enc_ref, splits, 3, cfg, seed=5)
    assert got.steps == len(want["losses"]) == 6 * (72 // 16)
    np.testing.assert_allclose(got.step_losses, want["losses"], rtol=1e-5, atol=1e-6)
    assert got.val_curve == [acc for acc, _ in want["curve"]]
    np.testing.assert_allclose(got.val_loss_curve, [-neg for _, neg in want["curve"]], rtol=1e-5)
    assert got.best_epoch == 1 + max(range(len(want["curve"])), key=want["curve"].__getitem__)
    assert got.best_epoch < got.epochs_run, "pick a setting where restoring an earlier epoch is exercised"
    for (name, p), q in zip(enc.state_dict().items(), enc_ref.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=f"encoder {name}")
    torch.testing.assert_close(got.head.weight, want["head"].weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.predictions, want["predictions"])


def test_learns_a_separable_problem():
    splits = vec_splits(n_per_class=60, n_classes=5, spread=0.5, seed=1)
    del splits["val"]  # the protocol carves its own val split from train
    task = DataTask(vec_dataset(splits, 5), lambda: VecEncoder(8))
    out = plugin.evaluate(task, epochs=5, batch_size=16)
    assert (out.predictions == out.labels).mean() >= 0.97
    assert out.chosen["val_source"].startswith("train[val_fraction=0.1")
    assert out.metrics["encoder_trainable_params"] == sum(p.numel() for p in task.encoder.parameters())
    assert len(out.metrics["val_curve"]) == 5 and out.chosen["val_top1"] == max(out.metrics["val_curve"])


def test_test_split_never_influences_the_choice():
    splits = vec_splits(spread=2.0, seed=2)
    shuffled = dict(splits, test=Split(splits["test"].samples, np.random.default_rng(0).permutation(
        splits["test"].labels)))
    outs = [plugin.evaluate(DataTask(vec_dataset(s), lambda: VecEncoder(8)), epochs=4, batch_size=16)
            for s in (splits, shuffled)]
    assert outs[0].chosen == outs[1].chosen
    assert outs[0].chosen["val_source"] == "dataset"
    assert outs[0].metrics["val_curve"] == outs[1].metrics["val_curve"]
    np.testing.assert_array_equal(outs[0].predictions, outs[1].predictions)
    np.testing.assert_array_equal(outs[1].labels, shuffled["test"].labels)


def test_steps_budget_stops_at_the_right_step():
    splits = vec_splits()  # 72 train samples: 4 steps per epoch at batch 16
    cfg = FinetuneConfig(epochs=10, steps=7, batch_size=16, warmup_fraction=0.3)
    res = finetune(VecEncoder(8), splits["train"], splits["val"], splits["test"], 3, cfg)
    assert (res.steps, res.epochs_run, len(res.val_curve), res.warmup_steps) == (7, 2, 2, 2)
    mults = [lr_multiplier(t, 7, 2) for t in range(7)]
    np.testing.assert_allclose([lr for lr, _ in res.step_lrs], [cfg.lr * m for m in mults])
    np.testing.assert_allclose([lr for _, lr in res.step_lrs], [cfg.head_lr * m for m in mults])
    epochs_only = finetune(VecEncoder(8), splits["train"], splits["val"], splits["test"], 3,
                           dataclasses.replace(cfg, epochs=2, steps=None))
    assert epochs_only.steps == 8


def image_dataset(n=48, seed=0) -> InMemoryDataset:
    """Two classes of 8x8 gray images: a bright upper or a bright lower half, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    imgs = rng.uniform(0, 80, size=(n, 8, 8))
    for i, label in enumerate(y):
        imgs[i, :4] += 150 * (1 - label)
        imgs[i, 4:] += 150 * label
    samples = [Image.fromarray(a.astype(np.uint8)) for a in imgs]
    parts = {"train": slice(0, 32), "test": slice(32, n)}
    splits = {k: Split(samples[s], y[s]) for k, s in parts.items()}
    return InMemoryDataset("halves", "image", ["top", "bottom"], lambda: splits, {})


def test_deterministic_on_cpu_with_augmentation_and_dropout():
    runs = []
    for _ in range(2):
        task = DataTask(image_dataset(), lambda: TinyCNN(seed=0), seed=4)
        out = plugin.evaluate(task, epochs=3, batch_size=8, hflip=True, val_fraction=0.25)
        runs.append((out, task.encoder.state_dict()))
    np.testing.assert_array_equal(runs[0][0].predictions, runs[1][0].predictions)
    assert runs[0][0].metrics["train_loss_curve"] == runs[1][0].metrics["train_loss_curve"]
    for a, b in zip(runs[0][1].values(), runs[1][1].values(), strict=True):
        assert torch.equal(a, b)
    assert runs[0][0].chosen["augmentation"] == "random_resized_crop(scale=(0.8, 1)) + hflip"
    other = plugin.evaluate(DataTask(image_dataset(), lambda: TinyCNN(seed=0), seed=5), epochs=3, batch_size=8,
                            hflip=True, val_fraction=0.25)
    assert other.metrics["train_loss_curve"] != runs[0][0].metrics["train_loss_curve"]


def test_leaves_global_rng_alone():
    splits, encoder = vec_splits(), VecEncoder(8)
    state = torch.random.get_rng_state()
    finetune(encoder, splits["train"], splits["val"], splits["test"], 3, FinetuneConfig(epochs=1))
    assert torch.equal(state, torch.random.get_rng_state())


def test_encoder_without_parameters_trains_only_the_head():
    splits = vec_splits(n_per_class=50, spread=0.5, seed=4)
    task = DataTask(vec_dataset(splits), NumpyEncoder)
    out = plugin.evaluate(task, epochs=5, batch_size=16, head_lr=0.1)
    assert out.metrics["encoder_trainable_params"] == 0
    assert (out.predictions == out.labels).mean() >= 0.9


def test_pixels_encoder_on_digits():
    from benchmark.datasets.vision import load_digits
    from benchmark.encoders.pixels import PixelsEncoder

    task = DataTask(load_digits(), PixelsEncoder)
    out = plugin.evaluate(task, epochs=5, head_lr=0.05)
    assert out.metrics["encoder_trainable_params"] == 0
    assert (out.predictions == out.labels).mean() >= 0.88  # logistic regression on pixels: ~0.97 at convergence
    assert out.chosen["augmentation"] == "random_resized_crop(scale=(0.8, 1))"


def test_random_resized_crop():
    img = Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10))
    same = random_resized_crop(img, np.random.default_rng(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert np.array_equal(np.asarray(same), np.asarray(img))
    a = random_resized_crop(img, np.random.default_rng(1))
    b = random_resized_crop(img, np.random.default_rng(1))
    assert a.size == img.size and np.array_equal(np.asarray(a), np.asarray(b))
    assert image_augmenter()(["text stays"], np.random.default_rng(0)) == ["text stays"]


def test_spec_declares_every_option():
    spec = catalog_with().get("protocols", "finetune")[0]
    config_fields = {f.name for f in dataclasses.fields(FinetuneConfig)}
    assert set(spec.defaults) == config_fields | set(plugin.PROTOCOL_DEFAULTS)
    assert {k: spec.defaults[k] for k in config_fields} == dataclasses.asdict(FinetuneConfig())


@pytest.mark.parametrize("bad, match", [({"epochs": 0}, "epochs"), ({"head_lr": 0.0}, "head_lr"),
                                        ({"warmup_fraction": 1.0}, "warmup_fraction"), ({"crop_scale": 0.0},
                                                                                         "crop_scale"),
                                        ({"val_fraction": 0.0}, "val_fraction"), ({"lrr": 1.0}, "lrr")])
def test_bad_options_are_named(bad, match):
    splits = vec_splits()
    del splits["val"]
    with pytest.raises((ValueError, TypeError), match=match):
        plugin.evaluate(DataTask(vec_dataset(splits), lambda: VecEncoder(8)), **bad)


@pytest.mark.slow
def test_timm_resnet_on_digits_end_to_end():
    catalog = catalog_with()
    resolved = catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=32]")
    spec = catalog.resolve("protocols", "finetune[steps=3,batch_size=32]")
    task = DataTask(catalog.resolve("datasets", "digits").load(), resolved.load)
    out = spec.spec.evaluate(task, **spec.options)
    assert out.metrics["steps"] == 3 and out.chosen["best_epoch"] == 1
    assert out.predictions.shape == out.labels.shape


class NoGradEncoder(VecEncoder):
    def encode(self, batch):
        with torch.inference_mode():
            return self.net(batch)


def test_non_differentiable_encoder_is_named_or_frozen():
    splits = vec_splits(spread=0.5)
    with pytest.raises(RuntimeError, match="without gradients"):
        finetune(NoGradEncoder(8), splits["train"], splits["val"], splits["test"], 3, FinetuneConfig(epochs=1))
    res = finetune(NoGradEncoder(8), splits["train"], splits["val"], splits["test"], 3,
                   FinetuneConfig(epochs=3, lr=0.0, head_lr=0.1, batch_size=16))
    assert (res.predictions == splits["test"].labels).mean() >= 0.9


@pytest.mark.gpu  # skipped without CUDA (tests/conftest.py)
def test_bf16_autocast_on_cuda():
    splits = vec_splits(spread=0.5)
    res = finetune(VecEncoder(8), splits["train"], splits["val"], splits["test"], 3,
                   FinetuneConfig(epochs=3, batch_size=16), device="cuda")
    assert res.amp and (res.predictions == splits["test"].labels).mean() >= 0.9
    cpu = finetune(VecEncoder(8), splits["train"], splits["val"], splits["test"], 3, FinetuneConfig(epochs=1))
    assert not cpu.amp


@pytest.mark.gpu  # skipped without CUDA (tests/conftest.py)
def test_cuda_head_over_an_encoder_that_returns_cpu_features():
    """tfidf / pixels style encoders are not modules and return CPU tensors; the head lives on the GPU."""
    class CpuFeatures:
        def preprocess(self, samples):
            return np.stack(samples).astype(np.float32)

        def encode(self, batch):
            return torch.from_numpy(np.asarray(batch))

    splits = vec_splits(spread=0.5)
    res = finetune(CpuFeatures(), splits["train"], splits["val"], splits["test"], 3,
                   FinetuneConfig(epochs=3, batch_size=16, lr=0.0, head_lr=0.1), device="cuda")
    assert (res.predictions == splits["test"].labels).mean() >= 0.9
