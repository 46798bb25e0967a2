"""Built-in image datasets that torchvision downloads: CIFAR-10/100, STL-10, SVHN, Flowers-102, Oxford-IIIT Pets,
DTD, EuroSAT, Food-101. A plain plugin module, like every built-in.

Nothing is downloaded at import or registration: the files are fetched (``download=true``, the default) only when
a user asks for the dataset, into ``root`` (default ``$REPBENCH_DATA`` or ``~/.cache/repbench/data``), the same
folder layout torchvision uses, so an existing torchvision download can be reused by pointing ``root`` at it.
The official splits are used (``val`` where the dataset has one); EuroSAT has none, so a seeded stratified split
is fixed and recorded. Images stay at native resolution and decode lazily when a sample is indexed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import checks
from benchmark.datasets.base import InMemoryDataset, check_options, split_all, subsample
from benchmark.datasets.images import ItemDecoder, LazyImages
from benchmark.errors import DataError, MissingData, MissingDependency
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec, Split, defaults_of
from benchmark.storage.paths import DATA_ENV, data_dir

EUROSAT_TEST_FRACTION = 0.2
TORCHVISION_HINT = "pip install 'repbench[vision]' (or pip install torchvision)"
#: DTD ships ten partitions of its images into train/val/test.
DTD_PARTITIONS = range(1, 11)
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck")


@dataclass(frozen=True)
class TorchvisionEntry:
    """How one repbench dataset maps onto a torchvision dataset class.

    ``splits`` maps repbench split names to the keyword arguments of the torchvision constructor;
    ``label_attr`` is the attribute holding the integer labels (read without decoding any image);
    ``folder`` is where torchvision keeps the files under ``root`` (for error messages).
    ``per_split_classes``: torchvision derives the class list from each split's own files and labels index it
    (DTD, Food-101), so other splits are relabelled onto train's list by class name.
    """

    name: str
    tv_class: str
    splits: Mapping[str, Mapping[str, Any]]
    label_attr: str
    folder: str
    size: str
    description: str
    split_note: str
    classes: tuple[str, ...] | None = None
    per_split_classes: bool = False
    extra_defaults: Mapping[str, Any] = field(default_factory=dict)


ENTRIES: tuple[TorchvisionEntry, ...] = (
    TorchvisionEntry("cifar10", "CIFAR10", {"train": {"train": True}, "test": {"train": False}}, "targets",
                     "cifar-10-batches-py", "163 MB", "CIFAR-10, 32x32 colour, 10 classes",
                     "official 50,000/10,000"),
    TorchvisionEntry("cifar100", "CIFAR100", {"train": {"train": True}, "test": {"train": False}}, "targets",
                     "cifar-100-python", "161 MB", "CIFAR-100 (fine labels), 32x32 colour, 100 classes",
                     "official 50,000/10,000"),
    TorchvisionEntry("stl10", "STL10", {"train": {"split": "train"}, "test": {"split": "test"}}, "labels",
                     "stl10_binary", "2.5 GB", "STL-10 labelled images, 96x96 colour, 10 classes",
                     "official 5,000/8,000 (all train folds; unlabeled images not used)", STL10_CLASSES),
    TorchvisionEntry("svhn", "SVHN", {"train": {"split": "train"}, "test": {"split": "test"}}, "labels",
                     ".", "246 MB", "SVHN cropped digits, 32x32 colour, 10 classes (label 0 is digit 0)",
                     "official 73,257/26,032 (extra not used)", tuple(str(d) for d in range(10))),
    TorchvisionEntry("flowers102", "Flowers102",
                     {"train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}}, "_labels",
                     "flowers-102", "330 MB", "Oxford Flowers-102, variable size colour, 102 classes",
                     "official train 1,020 / val 1,020 / test 6,149"),
    TorchvisionEntry("pets", "OxfordIIITPet", {"train": {"split": "trainval"}, "test": {"split": "test"}},
                     "_labels", "oxford-iiit-pet", "800 MB", "Oxford-IIIT Pets breeds, variable size colour, 37 classes",
                     "official trainval 3,680 (as train) / test 3,669"),
    TorchvisionEntry("dtd", "DTD", {"train": {"split": "train"}, "val": {"split": "val"}, "test": {"split": "test"}},
                     "_labels", "dtd", "625 MB", "Describable Textures, variable size colour, 47 classes",
                     "official partition (train/val/test 1,880 each)", per_split_classes=True, extra_defaults={"partition": 1}),
    TorchvisionEntry("eurosat", "EuroSAT", {"all": {}}, "targets", "eurosat/2750", "94 MB",
                     "EuroSAT RGB satellite tiles, 64x64 colour, 10 classes",
                     "no official split: seeded stratified split of the 27,000 images",
                     extra_defaults={"test_fraction": EUROSAT_TEST_FRACTION}),
    TorchvisionEntry("food101", "Food101", {"train": {"split": "train"}, "test": {"split": "test"}}, "_labels",
                     "food-101", "5 GB", "Food-101, up to 512 px colour, 101 classes", "official 75,750/25,250",
                     per_split_classes=True),
)
BY_NAME = {e.name: e for e in ENTRIES}


def _construct(entry: TorchvisionEntry, root: Path, download: bool, kwargs: Mapping[str, Any]) -> Any:
    """The torchvision dataset from files under ``root``; downloads only when they are missing and allowed."""
    try:
        import torchvision.datasets as tvd
    except ImportError as exc:
        raise MissingDependency(f"dataset {entry.name!r} is read by torchvision, which is not installed: "
                                f"{TORCHVISION_HINT}") from exc
    cls = getattr(tvd, entry.tv_class)
    where = root / entry.folder if entry.folder != "." else root
    try:
        return cls(root=str(root), download=False, **kwargs)
    except RuntimeError as exc:  # torchvision's "Dataset not found or corrupted"
        missing = exc
    if not download:
        raise MissingData(
            f"dataset {entry.name!r}: its files are not in {where} ({missing}). Allow the download with "
            f"{entry.name}[download=true] (needs internet once, about {entry.size}), or point root= (or "
            f"${DATA_ENV}) at the folder that holds torchvision's {entry.folder!r} files."
        ) from missing
    try:
        root.mkdir(parents=True, exist_ok=True)
        return cls(root=str(root), download=True, **kwargs)
    except Exception as exc:  # URLError, timeouts, checksum mismatches, a full disk
        raise MissingData(
            f"dataset {entry.name!r}: its files are not in {where} and downloading them failed "
            f"({type(exc).__name__}: {exc}). This dataset needs internet once (about {entry.size}, saved under "
            f"{root}); offline, copy torchvision's {entry.folder!r} files there or point root= (or ${DATA_ENV}) "
            "at a folder that has them."
        ) from exc


def _labels(tv_dataset: Any, attr: str) -> np.ndarray:
    """Integer labels of a torchvision dataset, read from ``attr`` (no image decoded); by iteration otherwise."""
    labels = getattr(tv_dataset, attr, None)
    if labels is None:  # a torchvision version that renamed the attribute: slow but correct
        labels = [tv_dataset[i][1] for i in range(len(tv_dataset))]
    return np.asarray(labels, dtype=np.int64)


def _class_names(entry: TorchvisionEntry, tv_dataset: Any, n_labels: int) -> list[str]:
    names = getattr(tv_dataset, "classes", None)
    if names:
        return [str(c) for c in names]
    if entry.classes is not None:
        return list(entry.classes)
    return [str(i) for i in range(n_labels)]


def _as_split(entry: TorchvisionEntry, tv_dataset: Any) -> tuple[Split, list[str]]:
    labels = _labels(tv_dataset, entry.label_attr)
    samples = LazyImages(ItemDecoder(tv_dataset), len(tv_dataset))
    return Split(samples, labels), _class_names(entry, tv_dataset, int(labels.max(initial=-1)) + 1)


def _align(entry: TorchvisionEntry, split: str, data: Split, own: list[str], classes: list[str]) -> Split:
    """Put a split's labels on train's class list: relabel by name where torchvision derived the class list from
    the split itself, check the range otherwise."""
    name = entry.name
    if not entry.per_split_classes or own == classes:
        if len(data.labels) and (data.labels.min() < 0 or data.labels.max() >= len(classes)):
            raise DataError(f"dataset {name!r}: split {split!r} has labels outside 0..{len(classes) - 1}")
        return data
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(own) - set(index))
    if unknown:
        raise DataError(f"dataset {name!r}: split {split!r} has classes {unknown[:5]} that train does not have")
    mapping = np.array([index[c] for c in own], dtype=np.int64)
    return Split(data.samples, mapping[data.labels])


def load_torchvision(name: str, root: str = "", download: bool = True, train_size: int | None = None,
                     test_size: int | None = None, seed: int = 0, **extra: Any) -> InMemoryDataset:
    """Build the repbench dataset ``name`` (a key of :data:`BY_NAME`) from torchvision.

    ``root``: the data folder ("" = ``$REPBENCH_DATA`` or ``~/.cache/repbench/data``). ``download``: fetch
    missing files (never when they are present). ``train_size`` / ``test_size``: seeded stratified subsamples of
    the official splits (None = all). ``extra``: ``partition`` (DTD) or ``test_fraction`` (EuroSAT).
    Raises OptionError for bad options and MissingData naming the dataset, the folder and the fix when the
    files are missing.
    """
    entry = BY_NAME[name]
    unknown = sorted(set(extra) - set(entry.extra_defaults))
    if unknown:
        raise TypeError(f"dataset {name!r}: unknown option(s) {unknown}")
    options = {**entry.extra_defaults, **extra}
    validator(name)({"root": root, "download": download, "train_size": train_size, "test_size": test_size,
                     "seed": seed, **options})
    folder = data_dir(root)
    ctor_extra = {"partition": int(options["partition"])} if "partition" in options else {}
    splits: dict[str, Split] = {}
    classes: list[str] | None = None
    for split, kwargs in entry.splits.items():
        data, own = _as_split(entry, _construct(entry, folder, download, {**kwargs, **ctor_extra}))
        classes = own if classes is None else classes
        splits[split] = _align(entry, split, data, own, classes)
    assert classes is not None
    if "all" in splits:  # EuroSAT: no official split
        splits["train"], splits["test"] = split_all(splits.pop("all"), options["test_fraction"], seed,
                                                    f"dataset {name!r}")
    splits["train"] = subsample(splits["train"], train_size, seed)[0]
    splits["test"] = subsample(splits["test"], test_size, seed)[0]
    info = {"source": f"torchvision.datasets.{entry.tv_class} in {folder}", "split": entry.split_note,
            "train_size": train_size, "test_size": test_size, "seed": seed, **options}
    order = tuple(s for s in ("train", "val", "test") if s in splits)
    return InMemoryDataset(name, "image", classes, lambda: splits, info, splits=order)


def validator(name: str) -> Callable[[Mapping[str, Any]], None]:
    """The spec validator of torchvision dataset ``name``: the shared options, and DTD's ``partition``."""
    owner = f"dataset {name!r}"

    def validate(options: Mapping[str, Any]) -> None:
        check_options(owner, options)
        if "partition" in options:
            checks.need_int(owner, "partition", options["partition"], DTD_PARTITIONS[0], DTD_PARTITIONS[-1])

    return validate


def _spec(entry: TorchvisionEntry) -> DatasetSpec:
    def load(**options: Any) -> InMemoryDataset:
        return load_torchvision(entry.name, **options)

    load.__doc__ = f"{entry.description}; {entry.split_note}. See :func:`load_torchvision`."
    return DatasetSpec(
        entry.name,
        "image",
        load=load,
        description=f"{entry.description}, {entry.split_note} (torchvision; downloads {entry.size} once)",
        defaults={**defaults_of(load_torchvision), **entry.extra_defaults},
        validate=validator(entry.name),
        examples=(entry.name, f"{entry.name}[train_size=5000,test_size=1000]"),
    )


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return [_spec(e) for e in ENTRIES]
