"""What plugins return is checked: encoder output (shape, width, finite values), dataset splits (lengths, label
range), protocol output; the same checks serve plugin authors through benchmark.testing."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from benchmark.datasets.base import InMemoryDataset
from benchmark.errors import ContractError, OptionError
from benchmark.features import FeatureCache, extract
from benchmark.features.task import HarnessTask
from benchmark.specs import ProtocolOutput, ProtocolSpec, Split
from benchmark.testing import (
    ArrayTask,
    blobs,
    catalog_with,
    check_dataset,
    check_encoder,
    check_protocol,
    check_protocol_output,
    check_split,
)

from helpers import tiny_images


class ToyEncoder:
    """A text encoder: feature ``j`` of text ``t`` is ``len(t) + j``; ``out`` rewrites a batch's output."""

    modality = "text"
    info = {"weights": "none", "params": 0, "embed_dim": 3}
    fingerprint = "toy"

    def __init__(self, embed_dim: int | None = 3, width: int = 3, out=None) -> None:
        self.embed_dim = embed_dim
        self.width = width
        self.out = out

    def preprocess(self, samples):
        return list(samples)

    def encode(self, batch):
        x = torch.tensor([[len(t) + j for j in range(self.width)] for t in batch], dtype=torch.float32)
        return self.out(x, batch) if self.out else x


TEXTS = ["a", "bb", "ccc", "dddd", "eeeee"]


def nan_for(text: str):
    def out(x, batch):
        x[[i for i, t in enumerate(batch) if t == text]] = float("nan")
        return x
    return out


# --- extraction -------------------------------------------------------------------------------------------------
def test_non_finite_features_name_the_encoder_and_sample_and_suggest_fp32_only_when_not_fp32():
    with pytest.raises(ContractError, match=r"encoder 'toy/nan'.*NaN or infinite.*1 sample.*at 3") as err:
        extract(ToyEncoder(out=nan_for("dddd")), TEXTS, batch_size=2, name="toy/nan")
    assert "--precision fp32" not in str(err.value) and "already ran in fp32" in str(err.value)
    with pytest.raises(ContractError, match=r"bf16.*--precision fp32"):
        extract(ToyEncoder(out=nan_for("a")), TEXTS, precision="bf16", name="toy/nan")


def test_extraction_rejects_a_width_that_is_not_the_declared_embed_dim():
    with pytest.raises(ContractError, match=r"encoder 'toy'.*4 wide.*embed_dim=3"):
        extract(ToyEncoder(embed_dim=3, width=4), TEXTS, name="toy")
    assert extract(ToyEncoder(embed_dim=None, width=4), TEXTS).shape == (5, 4)  # None: not declared


@pytest.mark.parametrize("out", [lambda x, b: x[:, 0], lambda x, b: x[:-1], lambda x, b: x[None]],
                         ids=["1-D", "missing row", "3-D"])
def test_extraction_rejects_wrongly_shaped_batches(out):
    with pytest.raises(ContractError, match=r"encoder 'ToyEncoder' returned features of shape .* expected"):
        extract(ToyEncoder(out=out), TEXTS, batch_size=2)


def test_extraction_rejects_batches_of_different_widths():
    enc = ToyEncoder(embed_dim=None, out=lambda x, b: x if len(b) == 2 else x[:, :2])
    with pytest.raises(ContractError, match="different widths"):
        extract(enc, TEXTS, batch_size=2)


def test_unknown_precision_is_an_option_error():
    with pytest.raises(OptionError, match="precision must be one of"):
        extract(ToyEncoder(), TEXTS, precision="fp8")


def test_valid_features_are_unchanged_by_the_checks():
    feats = extract(ToyEncoder(), TEXTS, batch_size=2)
    np.testing.assert_array_equal(feats, [[len(t) + j for j in range(3)] for t in TEXTS])
    assert feats.dtype == np.float32


# --- the harness task -----------------------------------------------------------------------------------------
def text_dataset(train_labels, test_labels, classes=("a", "b"), name="toy-text"):
    def build():
        return {"train": Split(TEXTS, train_labels), "test": Split(TEXTS[:3], test_labels)}
    return InMemoryDataset(name, "text", list(classes), build)


def task_of(dataset, encoder=None, cache=None, **kw) -> HarnessTask:
    return HarnessTask(encoder or ToyEncoder(), "toy[x=1]", dataset, device="cpu",
                       cache=cache or FeatureCache(enabled=False), quiet=True, **kw)


def test_test_labels_outside_the_classes_are_a_contract_error_naming_dataset_and_split():
    task = task_of(text_dataset([0, 1, 0, 1, 0], [0, 1, 2]), dataset_label="toy-text[n=3]")
    task.features("train")
    with pytest.raises(ContractError, match=r"dataset 'toy-text\[n=3\]' split 'test'.*0\.\.1.*\[2\] at rows 2"):
        task.features("test")
    with pytest.raises(ContractError, match=r"dataset 'toy-text' split 'train'.*\[-1\]"):
        task_of(text_dataset([0, 1, -1, 1, 0], [0, 1, 1])).features("train")


def test_a_split_whose_samples_and_labels_differ_names_the_split():
    class BadSplits:
        name = "bad"
        modality = "text"
        classes = ["a", "b"]
        splits = ("train", "test")
        info = {"split_sizes": {}}
        fingerprint = "bad"

        def split(self, name):
            if name == "train":
                return Split(TEXTS, [0, 1, 0, 1])  # Split's own check: no split name in its message
            return types.SimpleNamespace(samples=TEXTS, labels=np.array([0, 1]))  # not a Split at all

    task = task_of(BadSplits())
    with pytest.raises(ContractError, match=r"dataset 'bad' split 'train'.*5 samples but 4 labels"):
        task.features("train")
    with pytest.raises(ContractError, match=r"dataset 'bad' split 'test' has 5 samples but 2 labels"):
        task.features("test")


def test_harness_rejects_a_width_other_than_embed_dim():
    task = task_of(text_dataset([0, 1, 0, 1, 0], [0, 1, 0]), encoder=ToyEncoder(embed_dim=8))
    with pytest.raises(ContractError, match=r"encoder 'toy\[x=1\]'.*3 wide.*embed_dim=8"):
        task.features("train")


def test_harness_rejects_splits_of_different_widths():
    enc = ToyEncoder(embed_dim=None, out=lambda x, b: x if len(b) == 5 else x[:, :2])
    task = task_of(text_dataset([0, 1, 0, 1, 0], [0, 1, 0]), encoder=enc)
    task.features("train")
    with pytest.raises(ContractError, match=r"2 wide on split 'test' but 3 wide on the other splits"):
        task.features("test")


def test_harness_rejects_nan_features_naming_the_encoder_label():
    task = task_of(text_dataset([0, 1, 0, 1, 0], [0, 1, 0]), encoder=ToyEncoder(out=nan_for("bb")))
    with pytest.raises(ContractError, match=r"encoder 'toy\[x=1\]' produced NaN"):
        task.features("train")


# --- conformance helpers for plugin authors ---------------------------------------------------------------------
def test_check_dataset_raises_contract_errors_with_messages():
    check_dataset(tiny_images())
    with pytest.raises(ContractError, match=r"dataset 'toy-text' split 'test'.*\[2\]"):
        check_dataset(text_dataset([0, 1, 0, 1, 0], [0, 1, 2]))
    with pytest.raises(ContractError, match=r"lacks the split\(s\) \['val'\]"):
        check_dataset(tiny_images(), splits=("train", "val"))
    with pytest.raises(ContractError, match=r"split 'x'.*image samples must be Image"):
        check_split(Split(["not an image"], [0]), "image", name="x")
    with pytest.raises(ContractError, match="is empty"):
        check_split(Split([], []), "text")


def test_check_encoder_accepts_built_ins_and_names_broken_ones():
    images = tiny_images().split("train").samples[:3]
    feats = check_encoder(catalog_with().resolve("encoders", "pixels").load(), images)
    assert feats.shape == (3, 36)
    check_encoder(catalog_with().resolve("encoders", "tfidf[svd=2]").load(), TEXTS)
    with pytest.raises(ContractError, match=r"encoder 'mine'.*embed_dim=5"):
        check_encoder(ToyEncoder(embed_dim=5), TEXTS, name="mine")
    no_info = ToyEncoder()
    no_info.info = {"weights": "x"}
    with pytest.raises(ContractError, match=r"info lacks \['params', 'embed_dim'\]"):
        check_encoder(no_info, TEXTS)


def test_check_protocol_output_contract():
    ok = ProtocolOutput(predictions=np.array([0, 1, 1]), labels=np.array([0, 1, 0]))
    check_protocol_output(ok, 3, 2, "p")
    check_protocol_output(ProtocolOutput(metrics={"top1": 0.5}), 3, 2, "p")  # scores itself
    bad = {
        "without labels": ProtocolOutput(predictions=np.array([0, 1, 1])),
        "one entry per test sample": ProtocolOutput(predictions=np.array([0, 1]), labels=np.array([0, 1])),
        "integer class indices": ProtocolOutput(predictions=np.array([0.0, 1.0, 1.0]), labels=np.array([0, 1, 0])),
        r"class indices 0\.\.1, got \[2\]": ProtocolOutput(predictions=np.array([0, 2, 1]), labels=np.array([0, 1, 0])),
        "labels without predictions": ProtocolOutput(labels=np.array([0, 1, 0])),
        "not ProtocolOutput": {"top1": 1.0},
    }
    for match, output in bad.items():
        with pytest.raises(ContractError, match=rf"protocol 'p'.*{match}"):
            check_protocol_output(output, 3, 2, "p")


def test_check_protocol_runs_a_protocol_on_an_array_task():
    xtr, ytr = blobs(20, 3, seed=0, spread=0.1)
    xte, yte = blobs(10, 3, seed=0, spread=0.1)
    task = ArrayTask({"train": (xtr, ytr), "test": (xte, yte)})
    knn = catalog_with().specs["protocols"]["knn"]
    out = check_protocol(knn, task, k=5)
    assert len(out.predictions) == len(yte)
    broken = ProtocolSpec("broken", evaluate=lambda task: ProtocolOutput(predictions=np.zeros(2, int)))
    with pytest.raises(ContractError, match="protocol 'broken' returned predictions without labels"):
        check_protocol(broken, task)


def test_fitting_a_fittable_encoder_names_a_bad_train_split():
    from benchmark.features.task import load_pair

    catalog = catalog_with()
    bad = types.SimpleNamespace(label="mine[x=1]", load=lambda: text_dataset([0, 1, 5, 1, 0], [0, 1, 0]))
    with pytest.raises(ContractError, match=r"dataset 'mine\[x=1\]' split 'train'.*\[5\]"):
        load_pair(catalog.resolve("encoders", "tfidf[svd=2]"), bad, "cpu")
