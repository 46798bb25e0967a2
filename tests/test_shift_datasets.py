"""``shift:A>B``: train from A, test from B, classes aligned by name; names resolved through the catalog."""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest
from PIL import Image

from benchmark.datasets.base import InMemoryDataset
from benchmark.errors import DataError, OptionError, UnknownNameError
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec, Split
from benchmark.testing import catalog_with, check_dataset


def _images(classes: list[str], size: int, mode: str, per_class: int = 4, seed: int = 0) -> InMemoryDataset:
    rng = np.random.default_rng(seed)

    def split(offset: int) -> Split:
        labels = np.repeat(np.arange(len(classes)), per_class)
        shape = (size, size) if mode == "L" else (size, size, 3)
        samples = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in labels]
        return Split(samples, labels)

    splits = {"train": split(0), "test": split(1)}
    return InMemoryDataset(f"tiny-{size}-{mode}", "image", classes, lambda: splits, {"source": "test"})


def _texts(classes: list[str]) -> InMemoryDataset:
    labels = np.repeat(np.arange(len(classes)), 3)
    splits = {s: Split([f"{s} text {i}" for i in range(len(labels))], labels) for s in ("train", "test")}
    return InMemoryDataset("tiny-text", "text", classes, lambda: splits, {"source": "test"})


def _plugin() -> types.ModuleType:
    def register_datasets():
        return [
            DatasetSpec("pets-a", "image", load=lambda seed=0: _images(["Cat", "Dog ", "bird"], 16, "RGB", seed=seed),
                        description="16 px RGB, three classes"),
            DatasetSpec("pets-b", "image", load=lambda: _images(["fish", "dog", "cat", "  BIRD", "cow"], 8, "L"),
                        description="8 px gray, five classes"),
            DatasetSpec("cars", "image", load=lambda: _images(["sedan", "cat"], 8, "L"),
                        description="shares one class with pets-a"),
            DatasetSpec("trucks", "image", load=lambda: _images(["truck", "van"], 8, "L"),
                        description="shares nothing"),
            DatasetSpec("reviews", "text", load=lambda: _texts(["fresh", "rotten"]), description="text"),
            DatasetSpec("sentiment", "text", load=lambda: _texts(["negative", "positive"]), description="text"),
        ]

    mod = types.ModuleType("shift_test_plugin")
    mod.register_datasets = hookimpl(register_datasets)  # type: ignore[attr-defined]
    return mod


CATALOG = catalog_with(("test:pets", _plugin()))


def load(name: str):
    return CATALOG.resolve("datasets", name).load()


@pytest.fixture(scope="module")
def digits_to_mnist():
    return load("shift:digits>mnist5k")


def test_digits_to_mnist5k_trains_on_digits_and_tests_on_mnist_in_the_digits_format(digits_to_mnist):
    shifted = digits_to_mnist
    digits, mnist = load("digits"), load("mnist5k")
    check_dataset(shifted)
    assert shifted.modality == "image" and shifted.classes == [str(d) for d in range(10)]
    assert shifted.info["shared_classes"] == shifted.classes and shifted.info["dropped_target_classes"] == []
    train, test = shifted.split("train"), shifted.split("test")
    # the train split is digits' own, untouched
    assert np.array_equal(train.labels, digits.split("train").labels)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(train.samples, digits.split("train").samples, strict=True))
    # the test split is mnist5k's, converted to digits' 8x8 grayscale with values 0-255
    assert np.array_equal(test.labels, mnist.split("test").labels)
    first = test.samples[0]
    assert first.mode == "L" and first.size == (8, 8)
    expected = mnist.split("test").samples[0].resize((8, 8), Image.Resampling.BILINEAR)
    assert first.tobytes() == expected.tobytes()
    assert max(np.asarray(test.samples[i]).max() for i in range(20)) > 200  # same 0-255 range as digits
    assert shifted.info["image_format"]["size"] == [8, 8]
    assert shifted.info["source_dataset"]["label"] == "digits" and shifted.info["target_dataset"]["label"] == "mnist5k"


def test_mnist5k_to_digits_upsamples_digits_to_28_px():
    test = load("shift:mnist5k>digits").split("test")
    assert test.samples[0].size == (28, 28) and len(test) == 540


@pytest.mark.offline_text
def test_r8_to_r52_tests_on_the_r52_documents_of_the_r8_topics():
    shifted, r8, r52 = load("shift:r8>r52"), load("r8"), load("r52")
    check_dataset(shifted)
    assert shifted.modality == "text" and shifted.classes == r8.classes
    assert len(shifted.info["dropped_target_classes"]) == 52 - 8 and shifted.info["dropped_source_classes"] == []
    full = r52.split("test")
    keep = [i for i, y in enumerate(full.labels) if r52.classes[y] in r8.classes]
    test = shifted.split("test")
    assert list(test.samples) == [full.samples[i] for i in keep]
    assert [shifted.classes[y] for y in test.labels] == [r52.classes[full.labels[i]] for i in keep]
    assert shifted.split("train").samples == r8.split("train").samples


def test_classes_align_by_normalised_name_and_both_sides_keep_only_the_shared_ones():
    shifted = load("shift:pets-a>pets-b")
    a, b = load("pets-a"), load("pets-b")
    # names compared ignoring case and spaces, in the source's order and spelling
    assert shifted.classes == ["Cat", "Dog ", "bird"]
    assert shifted.info["dropped_target_classes"] == ["fish", "cow"] and shifted.info["dropped_source_classes"] == []
    test = shifted.split("test")
    b_test = b.split("test")
    mapping = {2: 0, 1: 1, 3: 2}  # pets-b cat, dog, "  BIRD" -> pets-a's order
    kept = [i for i, y in enumerate(b_test.labels) if int(y) in mapping]
    assert list(test.labels) == [mapping[int(b_test.labels[i])] for i in kept]
    assert [s.tobytes() for s in test.samples] == [
        b_test.samples[i].convert("RGB").resize((16, 16), Image.Resampling.BILINEAR).tobytes() for i in kept]
    assert test.samples[0].mode == "RGB" and test.samples[0].size == (16, 16)  # the source's format
    # the other way round: the source keeps only the shared classes too
    back = load("shift:pets-b>pets-a")
    assert back.classes == ["dog", "cat", "  BIRD"] and back.info["dropped_source_classes"] == ["fish", "cow"]
    assert set(back.split("train").labels) == {0, 1, 2} and len(back.split("train")) == 12
    assert len(a.split("train")) == 12


def test_size_resizes_both_sides():
    shifted = load("shift:pets-a>pets-b[size=10]")
    assert {s.size for s in shifted.split("train").samples} == {(10, 10)}
    assert {s.size for s in shifted.split("test").samples} == {(10, 10)}


def test_aliases_map_differing_class_names():
    with pytest.raises(DataError):
        load("shift:sentiment>reviews")
    shifted = load("shift:sentiment>reviews[aliases=fresh:positive+rotten:negative]")
    assert shifted.classes == ["negative", "positive"]
    assert shifted.info["aliases"] == {"fresh": "positive", "rotten": "negative"}
    # reviews' "fresh" (label 0) is sentiment's "positive" (label 1)
    assert list(shifted.split("test").labels) == [1, 1, 1, 0, 0, 0]


@pytest.mark.parametrize(("name", "error", "words"), [
    ("shift:pets-a>trucks", DataError, ["share 0 class name(s)", "pets-a has Cat, Dog , bird", "trucks has truck, van",
                                        "aliases="]),
    ("shift:pets-a>cars", DataError, ["share 1 class name(s) (Cat)", "at least 2"]),
])
def test_too_few_shared_classes_is_one_clear_line(name, error, words):
    with pytest.raises(error) as info:
        load(name)
    message = str(info.value)
    assert "\n" not in message and f"dataset '{name}'" in message
    for word in words:
        assert word in message


@pytest.mark.parametrize(("name", "error", "words"), [
    ("shift:digits>r8", OptionError, ["'digits' is an image dataset", "'r8' is a text dataset", "one modality"]),
    ("shift:digts>mnist5k", UnknownNameError, ["source dataset", "unknown dataset 'digts'", "Did you mean 'digits'"]),
    ("shift:digits>mnist5", UnknownNameError, ["target dataset", "Did you mean 'mnist5k'"]),
    ("shift:digits", OptionError, ["shift:<source>><target>"]),
    ("shift:digits>mnist5k[seed=1]", OptionError, ["unknown option(s) seed", "source.seed=0"]),
    ("shift:digits>mnist5k[source.test_fraction=2]", OptionError, ["source.*", "test_fraction"]),
    ("shift:digits>mnist5k[aliases=zero]", OptionError, ["name:name pairs"]),
    ("shift:r8>r52[size=8]", OptionError, ["image pairs only"]),
])
def test_bad_pairs_fail_at_resolve_time_with_one_line(name, error, words):
    with pytest.raises(error) as info:
        CATALOG.resolve("datasets", name)  # before any data loads
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_inner_options_are_prefixed_coerced_and_labelled():
    resolved = CATALOG.resolve("datasets", "shift:pets-a>pets-b[source.seed=3]")
    assert resolved.options["source.seed"] == 3 and resolved.label == "shift:pets-a>pets-b[source.seed=3]"
    assert resolved.spec.modality == "image"
    assert CATALOG.plugin_of("datasets", resolved.spec) == "builtin:shift-datasets"
    shifted = resolved.load()
    assert shifted.split("train").samples[0].tobytes() == load("pets-a[seed=3]").split("train").samples[0].tobytes()
    assert shifted.info["source_dataset"]["label"] == "pets-a[seed=3]"


@pytest.mark.offline_text
def test_fingerprint_covers_both_sides_and_is_stable():
    base = load("shift:pets-a>pets-b").fingerprint
    assert load("shift:pets-a>pets-b").fingerprint == base
    assert load("shift:pets-a>pets-b[source.seed=1]").fingerprint != base
    assert load("shift:pets-a>pets-b[size=10]").fingerprint != base
    assert load("shift:r8>r52").fingerprint != load("shift:r8>r52[target.max_chars=50]").fingerprint


def test_pickles_for_dataloader_workers(digits_to_mnist):
    copy = pickle.loads(pickle.dumps(digits_to_mnist))
    assert copy.fingerprint == digits_to_mnist.fingerprint
    assert copy.split("test").samples[5].tobytes() == digits_to_mnist.split("test").samples[5].tobytes()
    lazy = copy.split("test").samples[10:20]
    assert len(lazy) == 10 and lazy[0].tobytes() == digits_to_mnist.split("test").samples[10].tobytes()


@pytest.mark.offline_text
def test_families_nest_and_the_registered_load_works_on_its_own():
    nested = load("shift:digits>corrupt:mnist5k[target.kind=contrast,target.severity=5]")
    assert nested.split("test").samples[0].size == (8, 8)
    assert nested.info["target_dataset"]["label"] == "corrupt:mnist5k[kind=contrast,severity=5]"
    spec = CATALOG.specs["datasets"]["shift:"]
    direct = spec.load(variant="r8>r52")  # outside a catalog: binds through the installed plugins
    assert direct.classes == load("r8").classes
