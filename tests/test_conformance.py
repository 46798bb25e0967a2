"""Conformance over every registered spec (as timm tests every model in list_models()).

Static checks run for every spec: a description, JSON-serialisable defaults, a ``load``/``evaluate`` signature
that accepts every declared option (and ``variant`` for families). Dynamic checks build the offline specs.
"""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest

from benchmark.catalog import CALLABLES, SPEC_KINDS
from benchmark.features import extract
from benchmark.specs import is_family
from benchmark.testing import catalog_with, check_dataset

# the built-ins only: whatever else happens to be installed must not change what is tested
CATALOG = catalog_with()
ALL = [(kind, name) for kind in SPEC_KINDS for name in CATALOG.names(kind)]
CALLABLE = CALLABLES


def test_builtins_load_cleanly():
    assert not CATALOG.errors, [e.message() for e in CATALOG.errors]


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}:{n}" for k, n in ALL])
def test_spec_contract(kind, name):
    spec = CATALOG.specs[kind][name]
    assert spec.description, f"{kind} {name!r} has no description"
    json.dumps(dict(spec.defaults))  # options must be recordable as they are
    fn = getattr(spec, CALLABLE[kind])
    params = inspect.signature(fn).parameters
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    wanted = set(spec.defaults) | ({"variant"} if is_family(name) else set())
    missing = wanted - set(params)
    assert takes_kwargs or not missing, f"{kind} {name!r}: {CALLABLE[kind]}() does not accept {sorted(missing)}"


OFFLINE_IMAGE_DATASETS = ["digits", "mnist5k"]


@pytest.mark.parametrize("name", OFFLINE_IMAGE_DATASETS)
def test_offline_dataset_conformance(name):
    dataset = CATALOG.resolve("datasets", name).load()
    check_dataset(dataset)
    assert dataset.info["split_sizes"]["train"] > dataset.info["split_sizes"]["test"] > 0


@pytest.mark.parametrize("name", ["pixels", "timm/resnet18[pretrained=false,img_size=32]",
                                  "timm/vit_tiny_patch16_224[pretrained=false,img_size=32]"])
def test_image_encoder_conformance(name):
    images = CATALOG.resolve("datasets", "digits").load().split("test").samples[:3]
    encoder = CATALOG.resolve("encoders", name).load()
    feats = extract(encoder, images, batch_size=2)
    assert feats.shape[0] == 3 and feats.dtype == np.float32 and np.isfinite(feats).all()
    if encoder.embed_dim is not None:
        assert feats.shape[1] == encoder.embed_dim
    assert {"weights", "params", "embed_dim"} <= set(encoder.info)
    assert isinstance(encoder.fingerprint, str) and encoder.fingerprint


# families over other datasets: the spec bound to a variant (through the catalog) is checked like any other
OFFLINE_FAMILY_DATASETS = ["shift:digits>mnist5k", "shift:mnist5k>digits",
                           pytest.param("shift:r8>r52", marks=pytest.mark.offline_text),
                           "corrupt:digits[kind=gaussian_noise,severity=3]",
                           pytest.param("corrupt:r8[kind=char_typo,severity=2]", marks=pytest.mark.offline_text),
                           "corrupt:mnist5k[kind=pixelate,severity=5]"]


@pytest.mark.parametrize("name", OFFLINE_FAMILY_DATASETS)
def test_offline_family_dataset_conformance(name):
    import pickle

    resolved = CATALOG.resolve("datasets", name)
    assert resolved.spec.bind is None and resolved.spec.description
    json.dumps(dict(resolved.options))  # every option, prefixed ones included, recordable
    dataset = resolved.load()
    check_dataset(dataset)
    assert dataset.modality == resolved.spec.modality
    copy = pickle.loads(pickle.dumps(dataset))  # DataLoader workers receive it
    assert copy.fingerprint == dataset.fingerprint
