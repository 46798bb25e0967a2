"""Extraction and the feature cache."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.features import FeatureCache, cache_key, extract
from benchmark.testing import catalog_with

from helpers import tiny_images


class LengthEncoder:
    """A text encoder whose output depends on the batch only through padding: checks order restoration."""

    modality = "text"
    embed_dim = 3
    info: dict = {}
    fingerprint = "len"

    def __init__(self, sort: bool):
        if sort:
            self.sort_key = len
        self.batches: list[list[str]] = []

    def preprocess(self, samples):
        self.batches.append(list(samples))
        return [len(s) for s in samples]

    def encode(self, batch):
        return torch.tensor([[n, n * 2, 1.0] for n in batch], dtype=torch.float32)


def test_length_sorted_extraction_returns_features_in_input_order():
    texts = ["a" * n for n in (5, 1, 9, 3, 7, 2)]
    sorted_enc, plain_enc = LengthEncoder(sort=True), LengthEncoder(sort=False)
    a = extract(sorted_enc, texts, batch_size=2)
    b = extract(plain_enc, texts, batch_size=2)
    np.testing.assert_array_equal(a, b)
    assert [len(s) for s in sorted_enc.batches[0]] == [1, 2]  # shortest first: less padding per batch
    assert a.dtype == np.float32 and a.shape == (6, 3)


def test_pixels_features_are_the_raw_pixels():
    ds = tiny_images()
    enc = catalog_with().resolve("encoders", "pixels").load()
    feats = extract(enc, ds.split("train").samples, batch_size=7)
    ref = np.stack([np.asarray(im, np.float32).ravel() / 255 for im in ds.split("train").samples])
    np.testing.assert_allclose(feats, ref, atol=1e-7)


def test_cache_key_changes_with_every_input():
    base = cache_key("enc", "data", "train", "fp32")
    variants = [cache_key("enc2", "data", "train", "fp32"), cache_key("enc", "data2", "train", "fp32"),
                cache_key("enc", "data", "test", "fp32"), cache_key("enc", "data", "train", "bf16")]
    assert base == cache_key("enc", "data", "train", "fp32")
    assert len({base, *variants}) == 5


def test_encoder_fingerprint_covers_weights_and_preprocessing():
    catalog = catalog_with()
    a = catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=32]").load()
    same = catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=32]").load()
    other_seed = catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=32,seed=1]").load()
    other_size = catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=48]").load()
    assert a.fingerprint == same.fingerprint
    assert len({a.fingerprint, other_seed.fingerprint, other_size.fingerprint}) == 3
    assert a.info["weights"] == "random-init(seed=0)"
    changed = catalog.resolve("encoders", "timm/resnet18[pretrained=false,img_size=32]").load()
    with torch.no_grad():
        next(changed.backbone.parameters()).add_(1e-3)  # a changed model never reuses stale features
    assert changed.fingerprint != same.fingerprint


def test_dataset_fingerprint_changes_with_its_split_seed():
    assert tiny_images(seed=0).fingerprint == tiny_images(seed=0).fingerprint
    assert tiny_images(seed=0).fingerprint != tiny_images(seed=1).fingerprint


def test_cache_round_trip_is_float32_and_ignores_corrupt_files(tmp_path):
    cache = FeatureCache(tmp_path)
    cache.put("k", np.ones((3, 2), np.float64), np.arange(3))
    feats, labels = cache.get("k")
    assert feats.dtype == np.float32 and labels.dtype == np.int64
    cache.path("bad").write_bytes(b"not an npz")
    assert cache.get("bad") is None
    assert FeatureCache(tmp_path, enabled=False).get("k") is None


def test_dataset_fingerprint_sees_a_change_to_any_single_sample():
    from benchmark.datasets.base import InMemoryDataset
    from benchmark.datasets.images import array_images
    from benchmark.specs import Split

    def text_dataset(texts):
        labels = np.arange(len(texts)) % 2
        return InMemoryDataset("t", "text", ["a", "b"], lambda: {"train": Split(texts, labels),
                                                                "test": Split(texts[:4], labels[:4])})

    texts = [f"document number {i}" for i in range(400)]
    edited = list(texts)
    edited[1] = "an edited document"
    assert text_dataset(texts).fingerprint == text_dataset(list(texts)).fingerprint
    assert text_dataset(texts).fingerprint != text_dataset(edited).fingerprint

    pixels = np.random.default_rng(0).integers(0, 255, (300, 4, 4), dtype=np.uint8)
    changed = pixels.copy()
    changed[137, 2, 2] ^= 1
    lazy, lazy_changed = array_images(pixels), array_images(changed)
    assert lazy.digest() != lazy_changed.digest()
    assert lazy.take([1, 2]).digest() != lazy.take([1, 3]).digest()


def test_pixels_auto_mode_is_decided_once_for_mixed_images():
    from PIL import Image

    gray = [Image.new("L", (4, 4), 10) for _ in range(3)]
    rgb = [Image.new("RGB", (4, 4), (1, 2, 3)) for _ in range(3)]
    enc = catalog_with().resolve("encoders", "pixels").load()
    enc.fit(gray + rgb)
    feats = extract(enc, gray + rgb, batch_size=3)  # first batch all gray, second all RGB: same width
    assert feats.shape == (6, 48)
    only_gray = catalog_with().resolve("encoders", "pixels").load()
    only_gray.fit(gray)
    assert extract(only_gray, gray, batch_size=2).shape == (3, 16)
    assert only_gray.fingerprint != enc.fingerprint
