"""``corrupt:D[kind,severity,seed]``: the test split corrupted, seeded; each corruption checked against what it
must do (independent measurements, not a copy of the code)."""

from __future__ import annotations

import io
import pickle
import types

import numpy as np
import pytest
from PIL import Image

from benchmark.datasets.base import InMemoryDataset
from benchmark.datasets.corruptions import (
    CONTRAST_FACTOR,
    CORRUPTION_KINDS,
    JPEG_QUALITY,
    NOISE_STD,
    TEXT_RATE,
    Corruption,
)
from benchmark.errors import OptionError
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec, Split
from benchmark.testing import catalog_with, check_dataset

IMAGE_KINDS = list(CORRUPTION_KINDS["image"])
TEXT_KINDS = list(CORRUPTION_KINDS["text"])


def _smooth_images(n: int = 6, size: int = 48) -> list[Image.Image]:
    """Smooth RGB images with edges (a blur and a pixelation visibly change them)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for i in range(n):
        r = 0.5 + 0.4 * np.sin(2 * np.pi * (xx * (i + 1) + yy))
        g = (xx + yy > 0.6 + 0.1 * i).astype(float)
        b = 0.5 + 0.3 * np.cos(2 * np.pi * yy * 3)
        out.append(Image.fromarray((np.stack([r, g, b], -1) * 255).round().astype(np.uint8), "RGB"))
    return out


def _plugin() -> types.ModuleType:
    def photos():
        labels = np.array([0, 1, 0, 1, 0, 1])
        splits = {"train": Split(_smooth_images(), labels), "val": Split(_smooth_images()[:2], labels[:2]),
                  "test": Split(_smooth_images(), labels)}
        return InMemoryDataset("photos", "image", ["a", "b"], lambda: splits, {"source": "test"},
                               ("train", "val", "test"))

    def register_datasets():
        return [DatasetSpec("photos", "image", load=photos, description="48 px RGB test images")]

    mod = types.ModuleType("corrupt_test_plugin")
    mod.register_datasets = hookimpl(register_datasets)  # type: ignore[attr-defined]
    return mod


CATALOG = catalog_with(("test:photos", _plugin()))


def load(name: str):
    return CATALOG.resolve("datasets", name).load()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((pixels(a) - pixels(b)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_digits_gaussian_noise_corrupts_only_the_test_split():
    clean = load("digits")
    corrupted = load("corrupt:digits[kind=gaussian_noise,severity=3]")
    check_dataset(corrupted)
    assert corrupted.classes == clean.classes and corrupted.modality == "image"
    for a, b in zip(corrupted.split("train").samples, clean.split("train").samples, strict=True):
        assert a.tobytes() == b.tobytes()
    test, clean_test = corrupted.split("test"), clean.split("test")
    assert np.array_equal(test.labels, clean_test.labels)
    assert test.samples[0].size == (8, 8) and test.samples[0].mode == "L"
    changed = [test.samples[i].tobytes() != clean_test.samples[i].tobytes() for i in range(50)]
    assert all(changed)
    assert corrupted.info["corruption"] == {"kind": "gaussian_noise", "severity": 3, "seed": 0,
                                            "parameter": "noise std on [0, 1] pixels (ImageNet-C)",
                                            "value": NOISE_STD[2], "applies_to": "test"}
    assert corrupted.info["base_dataset"]["label"] == "digits"


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_images_same_bytes_for_a_seed_other_bytes_for_another_and_train_and_val_untouched(kind):
    name = f"corrupt:photos[kind={kind},severity=4]"
    first, again = load(name), load(name)
    assert [s.tobytes() for s in first.split("test").samples] == [s.tobytes() for s in again.split("test").samples]
    assert first.fingerprint == again.fingerprint
    clean = load("photos")
    for split in ("train", "val"):
        assert [s.tobytes() for s in first.split(split).samples] == \
               [s.tobytes() for s in clean.split(split).samples]
    other = load(f"corrupt:photos[kind={kind},severity=4,seed=1]")
    assert other.fingerprint != first.fingerprint
    if kind == "gaussian_noise":  # the only random image corruption
        assert first.split("test").samples[0].tobytes() != other.split("test").samples[0].tobytes()
    # a sample's corruption does not depend on which others were read, nor in which order
    samples = first.split("test").samples
    assert samples[3].tobytes() == samples[2:5][1].tobytes() == samples.take([5, 3])[1].tobytes()


@pytest.mark.parametrize("kind", IMAGE_KINDS)
def test_image_severities_are_monotone_in_psnr(kind):
    clean = load("photos").split("test").samples
    by_severity = [load(f"corrupt:photos[kind={kind},severity={s}]").split("test").samples for s in range(1, 6)]
    for i in range(len(clean)):
        values = [psnr(clean[i], levels[i]) for levels in by_severity]
        assert all(a >= b - 0.05 for a, b in zip(values, values[1:], strict=False)), (kind, i, values)
        assert values[0] > values[-1] + 1.0, (kind, i, values)


def test_image_severities_are_monotone_in_mean_psnr_on_mnist5k():
    clean = load("mnist5k").split("test").samples[:60]
    for kind in IMAGE_KINDS:
        means = []
        for severity in range(1, 6):
            corruption = Corruption("image", kind, severity, 0)
            mse = np.mean([np.mean((pixels(corruption(im, i)) - pixels(im)) ** 2) for i, im in enumerate(clean)])
            means.append(10 * np.log10(255.0**2 / mse) if mse > 0 else float("inf"))
        assert all(a >= b for a, b in zip(means, means[1:], strict=False)), (kind, means)
        assert means[0] > means[-1] + 2, (kind, means)


def test_image_corruptions_do_what_they_say():
    gray = Image.fromarray(np.full((64, 64), 128, np.uint8), "L")
    photo = _smooth_images(1)[0]
    # Gaussian noise: residual std = ImageNet-C's std (on a mid-gray image, where clipping is rare)
    for severity in (1, 2):
        out = Corruption("image", "gaussian_noise", severity, 0)(gray, 0)
        residual = (pixels(out) - 128) / 255
        assert abs(residual.std() - NOISE_STD[severity - 1]) < 0.01 and abs(residual.mean()) < 0.01
    # contrast: deviations from the per-channel mean shrink by the factor
    for severity in (1, 3):
        out = Corruption("image", "contrast", severity, 0)(photo, 0)
        x, y = pixels(photo), pixels(out)
        ratio = (y - y.mean((0, 1))).std() / (x - x.mean((0, 1))).std()
        assert abs(ratio - CONTRAST_FACTOR[severity - 1]) < 0.01
    # JPEG: exactly PIL's encoder at ImageNet-C's quality
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=JPEG_QUALITY[1])
    assert Corruption("image", "jpeg", 2, 0)(photo, 0).tobytes() == Image.open(buffer).convert("RGB").tobytes()
    # pixelate at severity 5 (factor 0.25): constant 4x4 blocks
    blocks = pixels(Corruption("image", "pixelate", 5, 0)(photo, 0)).reshape(12, 4, 12, 4, 3)
    assert np.all(blocks == blocks[:, :1, :, :1, :])
    # blur keeps the mean and lowers the local variation
    blurred = pixels(Corruption("image", "gaussian_blur", 5, 0)(photo, 0))
    assert abs(blurred.mean() - pixels(photo).mean()) < 2
    assert np.abs(np.diff(blurred, axis=1)).mean() < np.abs(np.diff(pixels(photo), axis=1)).mean()


def _word_edits(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a.split(), b.split(), strict=False)) + abs(len(a.split()) - len(b.split()))


@pytest.fixture(scope="module")
def r8_clean():
    return load("r8[test_size=300]").split("test")


@pytest.mark.offline_text
@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_text_corruption_is_seeded_monotone_and_test_only(kind, r8_clean):
    levels = [load(f"corrupt:r8[kind={kind},severity={s},base.test_size=300]") for s in range(1, 6)]
    again = load(f"corrupt:r8[kind={kind},severity=3,base.test_size=300]")
    other = load(f"corrupt:r8[kind={kind},severity=3,seed=1,base.test_size=300]")
    assert list(levels[2].split("test").samples) == list(again.split("test").samples)
    assert list(other.split("test").samples) != list(again.split("test").samples)
    assert levels[0].split("train").samples == load("r8[test_size=300]").split("train").samples
    clean = list(r8_clean.samples)
    if kind == "case_noise":
        distance = [[sum(x != y for x, y in zip(c, t, strict=True)) for c, t in zip(clean, lv.split("test").samples,
                                                                                 strict=True)] for lv in levels]
    elif kind == "word_dropout":
        distance = [[len(c.split()) - len(t.split()) for c, t in zip(clean, lv.split("test").samples, strict=True)]
                    for lv in levels]
    else:
        distance = [[_word_edits(c, t) for c, t in zip(clean, lv.split("test").samples, strict=True)] for lv in levels]
    d = np.array(distance)  # (severity, sample)
    assert np.all(np.diff(d, axis=0) >= 0), kind  # sample by sample, never less distortion at a higher severity
    assert d[0].sum() < d[2].sum() < d[4].sum()


def test_text_corruptions_do_what_they_say():
    text = " ".join(f"Word{i}x" for i in range(2000))
    n = len(text.split())
    for severity in (1, 5):
        rate = TEXT_RATE[severity - 1]
        cased = Corruption("text", "case_noise", severity, 0)(text, 0)
        assert cased.lower() == text.lower()
        flipped = sum(a != b for a, b in zip(cased, text, strict=True)) / sum(c.isalpha() for c in text)
        assert abs(flipped - rate) < 0.02
        dropped = Corruption("text", "word_dropout", severity, 0)(text, 0).split()
        assert abs(1 - len(dropped) / n - rate) < 0.03 and set(dropped) <= set(text.split())
        typos = Corruption("text", "char_typo", severity, 0)(text, 0).split()
        changed = [(a, b) for a, b in zip(text.split(), typos, strict=True) if a != b]
        assert abs(len(changed) / n - rate) < 0.03
        assert all(abs(len(a) - len(b)) <= 1 for a, b in changed)  # one edit per word
    assert Corruption("text", "word_dropout", 5, 0)("one", 0) == "one"  # never an empty text


@pytest.mark.parametrize(("name", "words"), [
    ("corrupt:digits[kind=typo,severity=1]", ["unknown corruption kind 'typo' for image datasets",
                                              "gaussian_noise, gaussian_blur, contrast, jpeg, pixelate"]),
    ("corrupt:r8[kind=jpeg,severity=1]", ["unknown corruption kind 'jpeg' for text datasets",
                                          "char_typo, word_dropout, case_noise"]),
    ("corrupt:digits[severity=1]", ["option kind is required"]),
    ("corrupt:digits[kind=jpeg]", ["option severity is required"]),
    ("corrupt:digits[kind=jpeg,severity=6]", ["severity"]),
    ("corrupt:digits[kind=jpeg,severity=1,seed=-1]", ["seed"]),
    ("corrupt:digts[kind=jpeg,severity=1]", ["Did you mean 'digits'"]),
    ("corrupt:digits[kind=jpeg,severity=1,base.test_fraction=0]", ["base.*", "test_fraction"]),
])
def test_bad_corruptions_fail_at_resolve_time_with_one_line(name, words):
    with pytest.raises((OptionError, LookupError)) as info:
        CATALOG.resolve("datasets", name)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


@pytest.mark.offline_text
def test_fingerprint_covers_kind_severity_seed_and_base():
    names = ["corrupt:photos[kind=contrast,severity=2]", "corrupt:photos[kind=contrast,severity=3]",
             "corrupt:photos[kind=jpeg,severity=2]", "corrupt:photos[kind=contrast,severity=2,seed=5]",
             "corrupt:r8[kind=case_noise,severity=2]", "corrupt:r8[kind=case_noise,severity=2,base.max_chars=50]"]
    prints = [load(n).fingerprint for n in names]
    assert len(set(prints)) == len(prints)
    assert load("photos").fingerprint not in prints


def test_labels_name_kind_and_severity_and_the_dataset_pickles():
    resolved = CATALOG.resolve("datasets", "corrupt:digits[kind=pixelate,severity=2,base.seed=1]")
    assert resolved.label == "corrupt:digits[base.seed=1,kind=pixelate,severity=2]"
    corrupted = resolved.load()
    copy = pickle.loads(pickle.dumps(corrupted))
    assert copy.fingerprint == corrupted.fingerprint
    assert [s.tobytes() for s in copy.split("test").samples[:20]] == \
           [s.tobytes() for s in corrupted.split("test").samples[:20]]


@pytest.mark.slow
def test_loader_workers_give_the_in_process_features_of_corrupted_and_shifted_splits():
    from benchmark.features import extract

    encoder = CATALOG.resolve("encoders", "pixels").load()
    for name in ("corrupt:digits[kind=gaussian_noise,severity=5]", "shift:mnist5k>digits"):
        samples = load(name).split("test").samples[:37]
        alone = extract(encoder, samples, batch_size=8)
        assert np.array_equal(extract(encoder, samples, batch_size=8, workers=2), alone), name


def test_the_train_features_of_every_corruption_are_the_base_datasets_cached_once(tmp_path):
    """corrupt:D shares D's train split (SharedSplits): its features come from D's cache entry; the test
    split's never do, and differ from the clean ones."""
    from benchmark.catalog import Catalog
    from benchmark.features import FeatureCache
    from benchmark.runner import RunConfig, load_task

    catalog = Catalog.load()
    config = RunConfig(cache_dir=tmp_path / "cache", quiet=True, device="cpu")
    clean = load_task(catalog.resolve("encoders", "pixels"), catalog.resolve("datasets", "digits"), config)
    train, _ = clean.features("train")
    test, _ = clean.features("test")
    for severity in (1, 5):
        name = f"corrupt:digits[kind=gaussian_noise,severity={severity}]"
        task = load_task(catalog.resolve("encoders", "pixels"), catalog.resolve("datasets", name), config)
        assert np.array_equal(task.features("train")[0], train) and task.cached["train"]
        noisy, _ = task.features("test")
        assert not task.cached["test"] and not np.array_equal(noisy, test)
    assert len(list(FeatureCache(tmp_path / "cache").root.glob("*.npz"))) == 4  # train once, three test splits
