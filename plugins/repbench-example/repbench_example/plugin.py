"""The example repbench plugin: an image encoder, an image dataset, a protocol, a pretraining method and a suite,
through repbench's hooks.

This module is what the entry point names (``example = "repbench_example.plugin"`` in pyproject.toml). It only
uses repbench's public API (``benchmark``) and the helper modules documented for plugin authors
(``benchmark.datasets``, ``benchmark.encoders``). Copy it and replace the ``load_*`` / ``build_*`` functions.

- ``example/random-conv``: a small CNN with seeded random weights. Random convolutional features are a real
  baseline: a learned encoder that does not beat them has learned little.
- ``example/shapes``: procedurally generated grayscale images of circles, squares, triangles and plus signs,
  with seeded position, size, brightness and noise, and a fixed seeded stratified train/test split.
- ``example/centroid``: a protocol, nearest class mean on frozen features (optionally L2-normalised first):
  the template for an evaluation; the harness extracts and caches the features and scores the predictions.
- ``example-siam``: a SimSiam-style pretraining method (Chen & He, 2021) in about 50 lines: views, an objective
  and a recipe. repbench's loop does everything else (optimiser, schedule, checkpoints, resume).
- ``example-distill``: a DINO-style self-distillation in under 80 lines, the template for methods that need
  multi-crop views of two sizes (one forward pass per resolution) and a per-step schedule inside the objective
  (``before_step(info)``: the teacher temperature warms up with ``info.step / info.total_steps``).
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import numpy as np
import torch
from PIL import Image

from benchmark import (
    Backbone,
    BuiltMethod,
    DatasetSpec,
    EncoderSpec,
    MethodSpec,
    ProtocolOutput,
    ProtocolSpec,
    Split,
    SuiteSpec,
    TrainDefaults,
    hookimpl,
)
from benchmark.datasets import InMemoryDataset, gray_images, stratified_split
from benchmark.encoders import TorchImageEncoder

SHAPES = ("circle", "square", "triangle", "plus")
SHAPES_TEST_FRACTION = 0.25
SHAPES_VERSION = 1  # bump when the generator changes, so cached features of old images are never reused
MEAN, STD = 0.5, 0.5


# --- the encoder --------------------------------------------------------------------------------------------

def random_conv_backbone(width: int) -> torch.nn.Sequential:
    """Three conv-ReLU stages (width, 2*width, 4*width channels), then global average pooling.

    (B, 3, H, W) -> (B, 4 * width).
    """
    layers: list[torch.nn.Module] = []
    channels = [3, width, 2 * width, 4 * width]
    for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
        layers += [torch.nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), torch.nn.ReLU()]
        if i < len(channels) - 2:
            layers.append(torch.nn.MaxPool2d(2))
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()]
    return torch.nn.Sequential(*layers)


def to_tensor(image: Image.Image, img_size: int) -> torch.Tensor:
    """An RGB PIL image -> normalised float tensor (3, img_size, img_size)."""
    if image.size != (img_size, img_size):
        image = image.resize((img_size, img_size), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32) / 255.0
    return torch.from_numpy((array.transpose(2, 0, 1) - MEAN) / STD)


def load_random_conv(width: int = 16, img_size: int = 32, seed: int = 0) -> TorchImageEncoder:
    """A seeded random-weight CNN as an image encoder with ``embed_dim = 4 * width``.

    The same seed always gives the same weights (so the same features); the global torch RNG is left
    untouched. ``TorchImageEncoder`` supplies ``preprocess``/``encode``, ``info`` (weights, weights_hash,
    params) and a ``fingerprint`` over the weights and the preprocessing configuration.
    """
    if width < 1 or img_size < 4:
        raise ValueError(
            f"encoder 'example/random-conv': need width >= 1 and img_size >= 4, "
            f"got width={width}, img_size={img_size}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        backbone = random_conv_backbone(width)
    preprocess = {"img_size": img_size, "mode": "RGB", "resize": "bilinear", "mean": MEAN, "std": STD}
    return TorchImageEncoder(
        backbone,
        embed_dim=4 * width,
        transform=partial(to_tensor, img_size=img_size),
        preprocess_config=preprocess,
        weights=f"random-init(seed={seed})",
        name="example/random-conv",
    )


# --- the dataset --------------------------------------------------------------------------------------------

def draw_shape(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One (size, size) float image in [0, 1]: a shape at a random position, scale and brightness."""
    radius = rng.uniform(0.2, 0.35) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    y, x = np.mgrid[0:size, 0:size] + 0.5
    dx, dy = x - cx, y - cy
    if shape == "circle":
        mask = dx**2 + dy**2 <= radius**2
    elif shape == "square":
        mask = np.maximum(abs(dx), abs(dy)) <= 0.8 * radius
    elif shape == "triangle":  # pointing up: inside the three half-planes of its edges
        mask = (dy <= radius / 2) & (np.sqrt(3) * dx - dy <= radius) & (-np.sqrt(3) * dx - dy <= radius)
    elif shape == "plus":
        bar = radius / 3
        mask = ((abs(dx) <= bar) & (abs(dy) <= radius)) | ((abs(dy) <= bar) & (abs(dx) <= radius))
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return mask * rng.uniform(0.6, 1.0)


def make_shapes(n_per_class: int, size: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(images float (N, size, size) in [0, 1], labels int64 (N,)): ``n_per_class`` of each shape."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(SHAPES)), n_per_class).astype(np.int64)
    images = np.stack([draw_shape(SHAPES[c], size, rng) for c in labels])
    images = images + noise * rng.standard_normal(images.shape)
    return np.clip(images, 0.0, 1.0), labels


def load_shapes(n_per_class: int = 100, size: int = 32, noise: float = 0.1, seed: int = 0) -> InMemoryDataset:
    """Procedural shapes as 8-bit grayscale PIL images, with a seeded stratified 75/25 train/test split.

    ``seed`` fixes both the images and the split; all options are recorded in ``info`` (so in every result).
    Nothing is generated until a split is first asked for.
    """
    if n_per_class < 4 or size < 8:
        raise ValueError(
            f"dataset 'example/shapes': need n_per_class >= 4 and size >= 8, "
            f"got n_per_class={n_per_class}, size={size}"
        )

    def build() -> dict[str, Split]:
        pixels, labels = make_shapes(n_per_class, size, noise, seed)
        images = gray_images(pixels, max_value=1.0)
        train, test = stratified_split(labels, SHAPES_TEST_FRACTION, seed)
        return {
            "train": Split([images[i] for i in train], labels[train]),
            "test": Split([images[i] for i in test], labels[test]),
        }

    info = {"source": "procedural (repbench_example.plugin.make_shapes)", "generator_version": SHAPES_VERSION,
            "n_per_class": n_per_class, "size": size, "noise": noise, "seed": seed,
            "split": "stratified", "test_fraction": SHAPES_TEST_FRACTION}
    return InMemoryDataset("example/shapes", "image", SHAPES, build, info)


# --- the hooks: repbench calls each once and checks what they return ----------------------------------------

@hookimpl
def register_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            "example/random-conv",
            "image",
            load=load_random_conv,
            description="small CNN with seeded random weights (a random-features baseline)",
            defaults={"width": 16, "img_size": 32, "seed": 0},
            examples=("example/random-conv", "example/random-conv[width=32,seed=1]"),
        )
    ]


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            "example/shapes",
            "image",
            load=load_shapes,
            description="procedural grayscale circles, squares, triangles and plus signs (seeded)",
            defaults={"n_per_class": 100, "size": 32, "noise": 0.1, "seed": 0},
            examples=("example/shapes", "example/shapes[n_per_class=500,noise=0.3]"),
        )
    ]


# --- the protocol -------------------------------------------------------------------------------------------

def evaluate_centroid(task: Any, normalize: bool = True) -> ProtocolOutput:
    """Nearest class mean: each test sample gets the class whose mean training feature is nearest (Euclidean).

    ``task.features(split)`` gives (features float32 (N, D), labels int64 (N,)), extracted once per encoder and
    dataset and cached; return the test predictions with the test labels, and the harness computes top-1 and
    its bootstrap confidence interval. ``normalize`` L2-normalises the features first (cosine geometry).
    """
    x_train, y_train = task.features("train")
    x_test, y_test = task.features("test")
    if normalize:
        x_train, x_test = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) for x in (x_train, x_test))
    classes = np.unique(y_train)
    means = np.stack([x_train[y_train == c].mean(0) for c in classes])
    distances = ((x_test[:, None, :] - means[None, :, :]) ** 2).sum(-1)
    return ProtocolOutput(predictions=classes[distances.argmin(1)], labels=y_test,
                          chosen={"classes_seen": int(len(classes))})


@hookimpl
def register_protocols() -> list[ProtocolSpec]:
    return [ProtocolSpec("example/centroid", evaluate=evaluate_centroid, primary_metric="top1",
                         description="nearest class mean on frozen features (the example plugin's protocol)")]
    # options come from evaluate's signature (normalize=True): repbench types and checks them before any work


# --- the pretraining method ---------------------------------------------------------------------------------

class SiamViews:
    """Two random resized crops of a sample, at the backbone's input size and normalisation (picklable)."""

    def __init__(self, backbone: Backbone, crop_min: float) -> None:
        from torchvision.transforms import v2

        c, h, w = backbone.input_size
        self.transform = v2.Compose([
            v2.RGB() if c == 3 else v2.Grayscale(c), v2.RandomResizedCrop((h, w), scale=(crop_min, 1.0)),
            v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(backbone.mean, backbone.std)])

    def __call__(self, sample: Image.Image) -> list[torch.Tensor]:
        return [self.transform(sample), self.transform(sample)]


class SiamObjective(torch.nn.Module):
    """Negative cosine similarity of each view's prediction with the other view's (stop-gradient) embedding."""

    def __init__(self, backbone: Backbone, hidden: int) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        d = backbone.embed_dim
        self.predictor = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d))

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        z1, z2 = (self.encoder.encode(v) for v in views)
        cos = torch.nn.functional.cosine_similarity
        return -(cos(self.predictor(z1), z2.detach()).mean() + cos(self.predictor(z2), z1.detach()).mean()) / 2


def build_siam(backbone: Backbone, hidden: int = 64, crop_min: float = 0.3, lr: float = 0.05) -> BuiltMethod:
    if hidden < 1 or not 0 < crop_min <= 1 or lr <= 0:
        raise ValueError(f"method 'example-siam': need hidden >= 1, 0 < crop_min <= 1, lr > 0; got {hidden}, "
                         f"{crop_min}, {lr}")
    recipe = TrainDefaults(optimizer="sgd", lr=lr, reference_batch=256, weight_decay=1e-4, batch_size=64)
    return BuiltMethod(SiamObjective(backbone, hidden), SiamViews(backbone, crop_min), recipe)


@hookimpl
def register_methods() -> list[MethodSpec]:
    return [MethodSpec("example-siam", build=build_siam,
                       description="SimSiam-style self-supervision (the example plugin's method template)"),
            MethodSpec("example-distill", build=build_distill,
                       description="DINO-style self-distillation: multi-crop views, a per-step teacher temperature")]


# --- a method with multi-crop views and a per-step schedule (example-distill) ------------------------------------

class CropViews:
    """2 global crops at the input size and ``local`` crops at half of it: views of two resolutions (picklable)."""

    def __init__(self, backbone: Backbone, local: int) -> None:
        from torchvision.transforms import v2

        c, h, w = backbone.input_size
        self.local = local
        self.crops = [v2.Compose([v2.RGB() if c == 3 else v2.Grayscale(c), v2.RandomResizedCrop(size, scale=scale),
                                  v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                                  v2.Normalize(backbone.mean, backbone.std)])
                      for size, scale in (((h, w), (0.4, 1.0)), ((h // 2, w // 2), (0.1, 0.4)))]

    def __call__(self, sample: Image.Image) -> list[torch.Tensor]:
        return [self.crops[0](sample), self.crops[0](sample)] + [self.crops[1](sample) for _ in range(self.local)]


class DistillObjective(torch.nn.Module):
    """The student (backbone + head) matches, on every crop, the EMA teacher's centred, sharpened distribution of
    the *other* global crop; the teacher's temperature follows the loop's step (``before_step``)."""

    def __init__(self, backbone: Backbone, out_dim: int) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.head = torch.nn.Sequential(torch.nn.Linear(backbone.embed_dim, 256), torch.nn.GELU(),
                                        torch.nn.Linear(256, out_dim))
        self.teacher = copy.deepcopy(torch.nn.ModuleDict({"encoder": self.encoder, "head": self.head}))
        self.register_buffer("center", torch.zeros(out_dim))
        self.teacher_temp = 0.04

    def before_step(self, info) -> None:  # info: the loop's StepInfo (step, total_steps, steps_per_epoch)
        self.teacher_temp = 0.04 + 0.03 * min(1.0, 2 * info.step / max(1, info.total_steps))

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        by_size: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(views):
            by_size.setdefault(tuple(v.shape[-2:]), []).append(i)
        student: dict[int, torch.Tensor] = {}
        for idx in by_size.values():  # one forward pass per resolution
            out = self.head(self.encoder.encode(torch.cat([views[i] for i in idx])))
            student.update(zip(idx, out.chunk(len(idx)), strict=True))
        with torch.no_grad():
            t_out = self.teacher["head"](self.teacher["encoder"].encode(torch.cat(views[:2])))
            targets = torch.softmax((t_out - self.center) / self.teacher_temp, dim=-1).chunk(2)
            if self.training:
                self.center.mul_(0.9).add_(0.1 * t_out.mean(0))
        terms = [-(targets[t] * torch.log_softmax(student[s] / 0.1, dim=-1)).sum(-1).mean()
                 for t in (0, 1) for s in student if s != t]
        return torch.stack(terms).mean()


def build_distill(backbone: Backbone, local_crops: int = 4, out_dim: int = 512, lr: float = 5e-4) -> BuiltMethod:
    if local_crops < 0 or out_dim < 1 or lr <= 0:
        raise ValueError(f"method 'example-distill': need local_crops >= 0, out_dim >= 1, lr > 0; got "
                         f"{local_crops}, {out_dim}, {lr}")
    objective = DistillObjective(backbone, out_dim)
    recipe = TrainDefaults(optimizer="adamw", lr=lr, reference_batch=256, weight_decay=0.04, batch_size=64, tau=0.996)
    pairs = ((objective.encoder, objective.teacher["encoder"]), (objective.head, objective.teacher["head"]))
    return BuiltMethod(objective, CropViews(backbone, local_crops), recipe, momentum_pairs=pairs)


# --- a suite: a named, versioned leaderboard others can reproduce ----------------------------------------------

@hookimpl
def register_suites() -> list[SuiteSpec]:
    return [SuiteSpec("example-shapes-v1", datasets=("example/shapes",), protocols=("knn", "linear"),
                      aggregation="mean", description="the shapes dataset, kNN and linear probe (ranked by the mean)")]
