"""Small plugins shared by the harness tests: a synthetic image dataset and a nearest-centroid protocol."""

from __future__ import annotations

import types

import numpy as np

from benchmark import DatasetSpec, ProtocolOutput, ProtocolSpec, Split, hookimpl
from benchmark.datasets.base import InMemoryDataset, gray_images


def tiny_images(n: int = 40, size: int = 6, seed: int = 0, classes: int = 2) -> InMemoryDataset:
    """Class c images are bright in band c; seeded noise. Deterministic for a seed."""

    def build():
        rng = np.random.default_rng(seed)
        out = {}
        for split, count in (("train", n), ("test", n // 2)):
            labels = np.arange(count) % classes
            imgs = rng.random((count, size, size)) * 0.3
            for i, c in enumerate(labels):
                imgs[i, c::classes, :] += 0.7
            out[split] = Split(gray_images(imgs, max_value=1.0), labels)
        return out

    return InMemoryDataset("tiny", "image", [f"c{i}" for i in range(classes)], build,
                           {"source": "synthetic", "seed": seed})


def centroid(task, fail: bool = False):
    """Nearest-centroid classification on the task's features (``fail=True`` raises, for error records)."""
    if fail:
        raise RuntimeError("protocol exploded on purpose")
    xtr, ytr = task.features("train")
    xte, yte = task.features("test")
    centers = np.stack([xtr[ytr == k].mean(0) for k in range(task.num_classes)])
    pred = ((xte[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
    return ProtocolOutput(predictions=pred, labels=yte, chosen={"centers": task.num_classes})


def make_plugin() -> types.ModuleType:
    """A fresh plugin module; ``module.calls["evaluate"]`` counts its protocol's calls (per module, so tests
    never share a counter)."""
    mod = types.ModuleType("harness_test_plugin")
    mod.calls = {"evaluate": 0}

    def counted_centroid(task, fail: bool = False):
        mod.calls["evaluate"] += 1
        return centroid(task, fail)

    @hookimpl
    def register_datasets():
        return [DatasetSpec("tiny", "image", load=tiny_images, defaults={"n": 40, "size": 6, "seed": 0,
                                                                         "classes": 2})]

    @hookimpl
    def register_protocols():
        return [ProtocolSpec("centroid", evaluate=counted_centroid, defaults={"fail": False}, modalities=("image",))]

    mod.register_datasets = register_datasets
    mod.register_protocols = register_protocols
    return mod
