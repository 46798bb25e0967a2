"""Probes at every depth (issue #11 §1): the layer option against hand-written forward hooks on the same models,
layer=-1 against the default features, fingerprints, range errors and the layers=all expansion."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from benchmark import features
from benchmark.encoders import timm_layers
from benchmark.encoders.base import TorchImageEncoder
from benchmark.encoders.layers import base_label, check_layer, expand_layers
from benchmark.encoders.timm_layers import TimmLayerEncoder, count_timm_layers
from benchmark.errors import OptionError
from benchmark.options import parse
from benchmark.plan import make_plan
from benchmark.testing import catalog_with

RESNET = "timm/resnet18[pretrained=false,img_size=32]"
VIT = "timm/vit_tiny_patch16_224[pretrained=false,img_size=32]"


@pytest.fixture(scope="module")
def catalog():
    return catalog_with()


@pytest.fixture(scope="module")
def resnet(catalog) -> TorchImageEncoder:
    return catalog.resolve("encoders", RESNET).load()


@pytest.fixture(scope="module")
def vit(catalog) -> TorchImageEncoder:
    return catalog.resolve("encoders", VIT).load()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


def with_layer(spec: str, layer: int | str) -> str:
    return f"{spec[:-1]},layer={layer}]"


def hooked(model: torch.nn.Module, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The output of ``module`` during a plain forward pass of ``model`` (a hand-written hook)."""
    caught = []
    handle = module.register_forward_hook(lambda _m, _i, out: caught.append(out))
    try:
        with torch.inference_mode():
            model(x)
    finally:
        handle.remove()
    return caught[0]


def encode(encoder, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return encoder.encode(x)


def test_resnet_stages_match_forward_hooks(catalog, resnet, images) -> None:
    model = resnet.backbone
    stages = [model.act1, model.layer1, model.layer2, model.layer3]
    for i, module in enumerate(stages):
        enc = catalog.resolve("encoders", with_layer(RESNET, i)).load() if i == 2 else TimmLayerEncoder(resnet, i)
        ref = hooked(model, module, images).mean(dim=(2, 3))
        got = encode(enc, images)
        assert enc.embed_dim == ref.shape[1] == got.shape[1]
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


def test_vit_blocks_match_hooks_with_the_heads_pooling(catalog, vit, images) -> None:
    model = vit.backbone
    assert model.global_pool == "token"
    for i in (0, 5, 10):
        enc = catalog.resolve("encoders", with_layer(VIT, i)).load() if i == 5 else TimmLayerEncoder(vit, i)
        tokens = hooked(model, model.blocks[i], images)
        with torch.inference_mode():
            ref = model.norm(tokens)[:, 0]  # the class token after the final norm: what the head pools
        torch.testing.assert_close(encode(enc, images), ref, rtol=1e-5, atol=1e-5)


def test_avg_pooled_vit_averages_patch_tokens_through_fc_norm(images) -> None:
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32,
                              global_pool="avg").eval()
    base = TorchImageEncoder(model, model.num_features, lambda im: im, {"input_size": [3, 32, 32]}, "random",
                             "timm/vit-avg")
    enc = TimmLayerEncoder(base, 3)
    tokens = hooked(model, model.blocks[3], images)
    with torch.inference_mode():
        ref = model.fc_norm(model.norm(tokens)[:, model.num_prefix_tokens:].mean(1))
    torch.testing.assert_close(encode(enc, images), ref, rtol=1e-5, atol=1e-5)
    assert enc.layer["source"] == "tokens"


def test_hook_fallback_equals_forward_intermediates(resnet, images, monkeypatch) -> None:
    maps = TimmLayerEncoder(resnet, 2)
    monkeypatch.setattr(timm_layers, "_mode", lambda model: "hooks")  # as for a model without forward_intermediates
    hooks = TimmLayerEncoder(resnet, 2)
    assert (maps.mode, hooks.mode) == ("maps", "hooks") and hooks.module_name == "layer2"
    torch.testing.assert_close(encode(hooks, images), encode(maps, images))


@pytest.mark.parametrize("spec", [RESNET, VIT])
def test_last_layer_is_the_default_representation_exactly(catalog, request, spec) -> None:
    base = request.getfixturevalue("resnet" if spec == RESNET else "vit")
    n = count_timm_layers(parse(spec).name.removeprefix("timm/"), {"img_size": 32})
    pixels = (np.random.default_rng(0).random((6, 32, 32, 3)) * 255).astype(np.uint8)
    pil = [Image.fromarray(a) for a in pixels]
    default = features.extract(base, pil, batch_size=4)
    for layer in (-1, n - 1):
        enc = catalog.resolve("encoders", with_layer(spec, layer)).load() if layer == -1 else \
            TimmLayerEncoder(base, layer)
        assert np.array_equal(features.extract(enc, pil, batch_size=4), default)
        assert enc.fingerprint == base.fingerprint  # the same feature-cache entry as today's
        assert enc.info["layer"]["final"] and enc.info["layer"]["relative_depth"] == 1.0


def test_fingerprints_differ_per_layer_and_info_says_the_depth(resnet) -> None:
    encs = [TimmLayerEncoder(resnet, i) for i in range(5)]
    assert len({e.fingerprint for e in encs}) == 5
    assert len({e.weights_hash for e in encs}) == 1  # the same weights, other representations
    blocks = [e.info["layer"] for e in encs]
    assert [b["index"] for b in blocks] == [0, 1, 2, 3, 4] and {b["count"] for b in blocks} == {5}
    assert [b["relative_depth"] for b in blocks] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert "layer" not in resnet.info  # default records stay as they were


def test_layer_count_without_weights_matches_the_loaded_model(resnet, vit) -> None:
    assert count_timm_layers("resnet18", {}) == 5 == len(resnet.backbone.feature_info)
    assert len(vit.backbone.blocks) == 12
    assert count_timm_layers("vit_tiny_patch16_224", {"img_size": 32}) == 12
    assert count_timm_layers("no_such_model", {}) is None


def test_out_of_range_layer_fails_at_plan_and_at_load_time(catalog, resnet) -> None:
    with pytest.raises(OptionError) as plan_err:
        make_plan(catalog, [with_layer(RESNET, 5)], ["digits"], ["knn"])
    msg = str(plan_err.value)
    assert "timm/resnet18" in msg and "layer 5" in msg and "0..4" in msg and "\n" not in msg
    with pytest.raises(OptionError, match=r"encoder 'timm/resnet18': layer -6 is out of range.*0\.\.4"):
        TimmLayerEncoder(resnet, -6)  # what load() does after building the model
    with pytest.raises(OptionError, match="layer must be an integer"):
        check_layer("encoder 'x'", True, 3)  # type: ignore[arg-type]


def test_layers_all_expands_to_one_encoder_per_depth_with_distinct_labels(catalog) -> None:
    plan = make_plan(catalog, [RESNET[:-1] + ",layers=all]", "pixels"], ["digits"], ["knn", "linear"])
    labels = list(dict.fromkeys(c.encoder.label for c in plan.cells))
    assert labels == [f"timm/resnet18[img_size=32,layer={i},pretrained=false]" for i in range(5)] + ["pixels"]
    assert len(plan.cells) == 12
    assert {base_label(label) for label in labels[:5]} == {"timm/resnet18[img_size=32,pretrained=false]"}
    same = expand_layers(catalog, [RESNET[:-1] + ",layer=all]"])
    assert [str(r) for r in same] == [f"timm/resnet18[pretrained=false,img_size=32,layer={i}]" for i in range(5)]
    picked = expand_layers(catalog, [RESNET[:-1] + ",layers=0+-1]"])
    assert [r.options["layer"] for r in picked] == ["0", "4"]  # negative indices normalised, order kept


def test_layers_option_errors(catalog) -> None:
    with pytest.raises(OptionError, match="no intermediate layers"):
        make_plan(catalog, ["pixels[layers=all]"], ["digits"], ["knn"])
    with pytest.raises(OptionError, match="either layer"):
        make_plan(catalog, [RESNET[:-1] + ",layer=1,layers=all]"], ["digits"], ["knn"])
    with pytest.raises(OptionError, match="expected 'all' or indices"):
        make_plan(catalog, [RESNET[:-1] + ",layers=deep]"], ["digits"], ["knn"])
    with pytest.raises(OptionError, match="layer 9 is out of range"):
        make_plan(catalog, [RESNET[:-1] + ",layers=0+9]"], ["digits"], ["knn"])
    with pytest.raises(OptionError, match="listed twice"):
        make_plan(catalog, [RESNET[:-1] + ",layers=all]", with_layer(RESNET, 4)], ["digits"], ["knn"])


def test_count_falls_back_to_a_cpu_build_when_meta_construction_fails(monkeypatch) -> None:
    real = timm_layers.create_model

    def picky(*args, **kwargs):
        if torch.empty(0).device.type == "meta":
            raise RuntimeError("Tensor.item() cannot be called on meta tensors")
        return real(*args, **kwargs)

    monkeypatch.setattr(timm_layers, "create_model", picky)
    assert count_timm_layers("resnet18", {"img_size": 32}) == 5
