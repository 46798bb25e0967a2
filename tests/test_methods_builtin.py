"""The built-in pretraining methods (simclr, byol, vicreg, autoencoder, supervised) and their views, on a tiny
backbone: registration and options, views (shape, determinism, pickling), a hand-written 3-step SGD loop over
each objective, BYOL's momentum target, labels, validators."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from benchmark.encoders.base import TorchImageEncoder
from benchmark.errors import OptionError
from benchmark.methods import autoencoder, byol, simclr, supervised, vicreg
from benchmark.methods.views import MIN_BLUR_SIZE, ImageViews, plain_view
from benchmark.specs import Backbone, Method, MethodSpec
from benchmark.testing import catalog_with

MODULES = {"simclr": simclr, "byol": byol, "vicreg": vicreg, "autoencoder": autoencoder, "supervised": supervised}
N_VIEWS = {"simclr": 2, "byol": 2, "vicreg": 2, "autoencoder": 1, "supervised": 1}
#: Small heads, so the tests stay fast.
SMALL = {"simclr": {"proj_hidden": 16, "proj_dim": 8}, "byol": {"proj_hidden": 16, "proj_dim": 8, "pred_hidden": 16},
         "vicreg": {"expander_dim": 16}, "autoencoder": {"decoder_width": 16}, "supervised": {"num_classes": 3}}
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def tiny_backbone(size: int = 32, channels: int = 3, seed: int = 0) -> Backbone:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = nn.Sequential(nn.Conv2d(channels, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                            nn.Conv2d(8, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12), nn.ReLU(),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten())
    mean, std = (MEAN, STD) if channels == 3 else ((0.5,), (0.25,))
    cfg = {"input_size": [channels, size, size], "mean": list(mean), "std": list(std)}
    enc = TorchImageEncoder(net, 12, transform=lambda img: torch.zeros(1), preprocess_config=cfg,
                            weights="random-init(seed=0)", name="tiny")
    return backbone_of(None, enc)


def backbone_of(resolved, enc: TorchImageEncoder) -> Backbone:
    cfg = enc.preprocess_config
    return Backbone(resolved, enc, int(enc.embed_dim), tuple(int(v) for v in cfg["input_size"]),
                    tuple(cfg["mean"]), tuple(cfg["std"]))


def images(n: int = 6, seed: int = 0) -> list[Image.Image]:
    """Colour images of assorted sizes and a few grayscale 8x8 'digits'."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append(Image.fromarray((rng.random((8, 8)) * 255).astype(np.uint8), "L"))
        else:
            out.append(Image.fromarray((rng.random((30 + i, 40, 3)) * 255).astype(np.uint8), "RGB"))
    return out


def build(name: str, backbone: Backbone | None = None, **options) -> Method:
    torch.manual_seed(0)
    return MODULES[name].build(backbone or tiny_backbone(), **{**SMALL[name], **options})


def batches(method: Method, samples, seed: int = 0) -> list[torch.Tensor]:
    """What the loop does: views per sample, stacked into one batch per view."""
    torch.manual_seed(seed)
    per_sample = [method.views(s) for s in samples]
    return [torch.stack(v) for v in zip(*per_sample, strict=True)]


def trainable(objective: nn.Module) -> list[torch.Tensor]:
    return [p for p in objective.parameters() if p.requires_grad]


# --- registration and options ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODULES)
def test_each_module_registers_one_method_whose_options_come_from_build(name):
    spec = catalog_with().specs["methods"][name]  # registered by benchmark.methods.builtin
    assert isinstance(spec, MethodSpec) and spec.name == name and spec.modality == "image"
    assert spec.uses_labels == (name == "supervised")
    assert {"lr", "batch_size", "weight_decay", "crop_min", "hflip"} <= set(spec.defaults)
    assert spec.defaults["hflip"] is False
    spec.validate(dict(spec.defaults))  # the defaults are valid


def test_hyperparameters_reach_the_train_defaults():
    m = build("simclr", lr=0.1, batch_size=64, weight_decay=1e-4, temperature=0.2)
    assert (m.defaults.optimizer, m.defaults.lr, m.defaults.batch_size, m.defaults.weight_decay) == \
           ("sgd", 0.1, 64, 1e-4)
    assert m.defaults.reference_batch == 128 and m.defaults.warmup_fraction == 0.0
    assert m.objective.temperature == 0.2
    assert build("byol", tau=0.9).defaults.tau == 0.9
    v = build("vicreg").defaults
    assert (v.optimizer, v.lr, v.reference_batch, v.weight_decay, v.warmup_fraction) == ("lars", 0.2, 256, 1e-6, 0.1)
    assert build("autoencoder").defaults.optimizer == "adamw"


def _catalog():
    return catalog_with()


def test_options_resolve_through_the_catalog_and_build_around_a_timm_backbone():
    catalog = _catalog()
    resolved = catalog.resolve("methods", "simclr[temperature=0.2,proj_dim=16,hflip=true]")
    assert resolved.options["temperature"] == 0.2 and resolved.options["proj_dim"] == 16
    assert resolved.options["hflip"] is True and resolved.label.startswith("simclr[")
    enc_res = catalog.resolve("encoders", "timm/resnet10t[pretrained=false,img_size=32]")
    backbone = backbone_of(enc_res, enc_res.load())
    assert backbone.input_size == (3, 32, 32)
    method = resolved.spec.build(backbone, **resolved.options)
    assert isinstance(method, Method)
    views = batches(method, images(4))
    assert [tuple(v.shape) for v in views] == [(4, 3, 32, 32)] * 2
    method.objective.train()
    loss = method.objective(views, None)
    loss.backward()
    assert torch.isfinite(loss) and any(p.grad is not None and p.grad.abs().sum() > 0
                                        for p in backbone.encoder.parameters())


@pytest.mark.parametrize("spec_string", ["simclr[temperature=0]", "simclr[temperature=-1]", "simclr[proj_dim=0]",
                                         "byol[tau=1]", "byol[tau=-0.1]", "byol[proj_dim=0]", "vicreg[expander_dim=0]",
                                         "supervised[num_classes=1]", "simclr[lr=0]", "autoencoder[crop_min=0]"])
def test_validators_reject_unusable_values_at_plan_time(spec_string):
    with pytest.raises(OptionError, match="option"):
        _catalog().resolve("methods", spec_string)


def test_build_validates_too():
    with pytest.raises(OptionError, match="temperature"):
        simclr.build(tiny_backbone(), temperature=0.0)
    with pytest.raises(OptionError, match="tau"):
        byol.build(tiny_backbone(), tau=1.5)


# --- views --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODULES)
def test_views_have_the_backbone_shape_are_seeded_and_pickle(name):
    method = build(name)
    for img in images(3):
        torch.manual_seed(1)
        views = method.views(img)
        assert len(views) == N_VIEWS[name]
        assert all(v.shape == (3, 32, 32) and v.dtype == torch.float32 and torch.isfinite(v).all() for v in views)
        torch.manual_seed(1)
        assert all(torch.equal(a, b) for a, b in zip(views, method.views(img), strict=True))
        clone = pickle.loads(pickle.dumps(method.views))
        torch.manual_seed(1)
        assert all(torch.equal(a, b) for a, b in zip(views, clone(img), strict=True))
    if N_VIEWS[name] == 2:
        torch.manual_seed(2)
        v1, v2 = method.views(images(1)[0])
        assert not torch.equal(v1, v2)  # two different augmentations


def test_views_convert_channels_both_ways_and_normalise():
    rgb, gray = images(3)[0], images(3)[2]
    three = ImageViews(tiny_backbone())
    assert three(gray).shape == (3, 32, 32)
    one = ImageViews(tiny_backbone(size=28, channels=1))
    assert one(rgb).shape == (1, 28, 28) and one(gray).shape == (1, 28, 28)
    flat = Image.new("RGB", (20, 20), (255, 0, 51))
    x = plain_view(tiny_backbone())(flat)
    want = (torch.tensor([1.0, 0.0, 0.2]) - torch.tensor(MEAN)) / torch.tensor(STD)
    assert torch.allclose(x.mean(dim=(1, 2)), want, atol=1e-5)
    assert torch.equal(plain_view(tiny_backbone())(rgb), plain_view(tiny_backbone())(rgb))  # no randomness


def test_no_flip_by_default_and_no_blur_on_small_images():
    steps = lambda v: [type(t).__name__ for t in v.rgb_pipeline.transforms]  # noqa: E731
    assert "RandomHorizontalFlip" not in steps(ImageViews(tiny_backbone()))
    assert "RandomHorizontalFlip" in steps(ImageViews(tiny_backbone(), hflip=True))
    assert len(steps(ImageViews(tiny_backbone(), blur=True))) == len(steps(ImageViews(tiny_backbone())))
    big = ImageViews(tiny_backbone(size=MIN_BLUR_SIZE), blur=True)
    assert any("GaussianBlur" in repr(t) for t in big.rgb_pipeline.transforms)
    gray_steps = [type(t).__name__ for t in ImageViews(tiny_backbone()).gray_pipeline.transforms]
    assert gray_steps == ["RandomResizedCrop"]  # no colour jitter or grayscale for grayscale sources


# --- objectives -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODULES)
def test_three_sgd_steps_train_the_backbone_and_the_heads(name):
    backbone = tiny_backbone()
    method = build(name, backbone)
    objective = method.objective
    encoder_params = list(backbone.encoder.parameters())
    params = trainable(objective)
    assert all(any(p is q for q in params) for p in encoder_params)  # the backbone is under the objective
    assert len(params) > len(encoder_params)  # and so are the method's own heads
    views = batches(method, images(8))
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    objective.train()
    before = [p.detach().clone() for p in encoder_params]
    losses = []
    for _ in range(3):
        loss = objective(views, labels)
        assert loss.shape == () and torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in encoder_params) and encoder_params[0].grad.abs().sum() > 0
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses
    assert any(not torch.equal(a, p) for a, p in zip(before, encoder_params, strict=True))


@pytest.mark.parametrize("name", ["simclr", "byol", "vicreg", "autoencoder"])
def test_self_supervised_objectives_ignore_labels(name):
    method = build(name)
    views = batches(method, images(4))
    method.objective.eval()
    with torch.no_grad():
        assert torch.equal(method.objective(views, None), method.objective(views, torch.tensor([0, 1, 0, 1])))


def test_supervised_reads_labels():
    method = build("supervised")
    views = batches(method, images(4))
    objective = method.objective.eval()
    with torch.no_grad():
        a = objective(views, torch.tensor([0, 0, 0, 0]))
        b = objective(views, torch.tensor([1, 2, 1, 2]))
        manual = nn.functional.cross_entropy(objective.head(objective.encoder.encode(views[0])),
                                             torch.tensor([0, 0, 0, 0]))
    assert not torch.equal(a, b) and torch.allclose(a, manual)
    with pytest.raises(ValueError, match="labels"):
        objective(views, None)
    with pytest.raises(ValueError, match="num_classes"):
        objective(views, torch.tensor([0, 1, 2, 3]))


def test_byol_target_is_a_frozen_copy_updated_only_by_the_ema():
    backbone = tiny_backbone()
    method = build("byol", backbone)
    objective = method.objective
    pairs = list(method.momentum_pairs)
    assert [(o, t) for o, t in pairs] == [(objective.encoder, objective.target_encoder),
                                         (objective.projector, objective.target_projector)]
    targets = [p for _, t in pairs for p in t.parameters()]
    assert targets and not any(p.requires_grad for p in targets)
    assert not any(any(p is t for t in targets) for p in trainable(objective))  # the optimiser never sees them
    for online, target in pairs:  # a copy at first
        assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters(), strict=True))
    optimizer = torch.optim.SGD(trainable(objective), lr=0.1)
    objective.train()
    loss = objective(batches(method, images(8)), None)
    loss.backward()
    assert all(p.grad is None for p in targets)
    optimizer.step()
    snapshot = [p.detach().clone() for p in targets]
    tau = method.defaults.tau
    with torch.no_grad():  # the loop's EMA, by hand
        for online, target in pairs:
            for po, pt in zip(online.parameters(), target.parameters(), strict=True):
                pt.mul_(tau).add_(po, alpha=1 - tau)
    assert any(not torch.equal(a, b) for a, b in zip(snapshot, targets, strict=True))  # the EMA moved the target
    online_params = [p for o, _ in pairs for p in o.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(online_params, targets, strict=True))  # ... but not onto the online net
    assert objective.target_encoder.training == objective.encoder.training  # same mode as the online network


@pytest.mark.parametrize("size", [(1, 28, 28), (3, 32, 32), (3, 24, 40), (3, 8, 8), (3, 224, 224)])
def test_autoencoder_decoder_reconstructs_the_input_size(size):
    decoder = autoencoder.Decoder(12, size, 16)
    assert decoder(torch.randn(2, 12)).shape == (2, *size)
