"""Extraction and the feature cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.features import FeatureCache, cache_key, extract
from benchmark.features.cache import CacheWarning
from benchmark.features.task import HarnessTask
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
    with pytest.warns(CacheWarning, match=r"bad\.npz: unreadable"):
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


# --- the cache validates what it reads ---------------------------------------------------------------------------
def pixels_task(cache: FeatureCache) -> HarnessTask:
    enc = catalog_with().resolve("encoders", "pixels").load()
    return HarnessTask(enc, "pixels", tiny_images(), device="cpu", cache=cache, quiet=True)


def poison(cache: FeatureCache, key: str, features=None, labels=None) -> None:
    """Rewrite a cache entry in place (as a bug, a disk error or a hand edit could)."""
    with np.load(cache.path(key)) as data:
        x, y = data["features"], data["labels"]
    np.savez(cache.path(key), features=x if features is None else features(x),
             labels=y if labels is None else labels(y))


def train_key(task: HarnessTask) -> str:
    return cache_key(task.encoder.fingerprint, task.dataset.fingerprint, "train", "fp32")


def with_nan(x):
    x = x.copy()
    x[3, 5] = np.nan
    return x


POISONS = {
    "a NaN in one train row": (dict(features=with_nan), "1 non-finite feature values in 1 rows"),
    "an infinity": (dict(features=lambda x: np.where(x > 0.9, np.inf, x).astype(np.float32)), "non-finite"),
    "float64 features": (dict(features=lambda x: x.astype(np.float64)), "not a float32"),
    "1-D features": (dict(features=lambda x: x.ravel()), "not a float32"),
    "a wrong width": (dict(features=lambda x: x[:, :-1]), "35 wide but the encoder's embed_dim is 36"),
    "a missing row": (dict(features=lambda x: x[:-1]), "labels are int64 of shape"),
    "shuffled labels": (dict(labels=lambda y: y[::-1].copy()), "labels differ from the split's"),
    "int32 labels": (dict(labels=lambda y: y.astype(np.int32)), "labels are int32"),
}


@pytest.mark.parametrize("case", list(POISONS))
def test_invalid_cache_entries_are_discarded_with_a_warning_and_recomputed(tmp_path, case):
    change, cause = POISONS[case]
    cache = FeatureCache(tmp_path)
    # copied: the task hands out the entry's memory map, and poison() rewrites that file in place
    fresh = tuple(np.array(a) for a in pixels_task(cache).features("train"))
    poison(cache, train_key(pixels_task(cache)), **change)
    again = pixels_task(cache)
    again.encoder.embed_dim = 36  # known from an earlier run: the width check applies
    with pytest.warns(CacheWarning, match=rf"feature cache file .*\.npz: .*{cause}"):
        feats, labels = again.features("train")
    assert again.cached["train"] is False  # recomputed, not read
    np.testing.assert_array_equal(feats, fresh[0])
    np.testing.assert_array_equal(labels, fresh[1])
    assert np.isfinite(feats).all()
    third = pixels_task(cache)
    third.features("train")
    assert third.cached["train"] is True  # the recomputed entry replaced the bad one


def test_cache_warnings_go_to_a_log_callback_when_given(tmp_path):
    messages: list[str] = []
    cache = FeatureCache(tmp_path, log=messages.append)
    pixels_task(cache).features("train")
    key = train_key(pixels_task(cache))
    poison(cache, key, features=with_nan)
    pixels_task(cache).features("train")
    assert len(messages) == 1 and str(cache.path(key)) in messages[0] and "non-finite" in messages[0]


def test_valid_cache_hits_are_bit_identical(tmp_path):
    cache = FeatureCache(tmp_path)
    first = pixels_task(cache).features("test")
    second = pixels_task(cache)
    feats, labels = second.features("test")
    assert second.cached["test"] is True
    assert feats.tobytes() == first[0].tobytes() and labels.tobytes() == first[1].tobytes()
