"""Building blocks for dataset plugins: an in-memory :class:`Dataset`, seeded stratified splits and subsamples,
images as PIL, and the checks of the options every dataset shares.

Built-in and third-party dataset plugins use these; none of them is required by the Dataset protocol.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from benchmark import checks
from benchmark.errors import ContractError, DataError, MissingData, OptionError
from benchmark.specs import Split


class InMemoryDataset:
    """A :class:`~benchmark.specs.Dataset` over splits built by a function, loaded on first use.

    ``build()`` returns ``{"train": Split, "test": Split, ...}``; it runs once, the first time a split or the
    sizes are needed. ``info`` merges the given ``info`` with the split sizes.
    """

    def __init__(
        self,
        name: str,
        modality: str,
        classes: Sequence[str],
        build: Callable[[], Mapping[str, Split]],
        info: Mapping[str, Any] | None = None,
        splits: tuple[str, ...] = ("train", "test"),
    ) -> None:
        self.name = name
        self.modality = modality
        self.classes = list(classes)
        self.splits = splits
        self._build = build
        self._data: Mapping[str, Split] | None = None
        self._info = dict(info or {})

    def __getstate__(self) -> dict[str, Any]:
        """Pickled with its splits built and without ``build`` (often a closure), so DataLoader workers started
        by spawn, and Ray tasks, can receive a dataset; lazy image sequences stay lazy."""
        state = dict(self.__dict__)
        state["_data"] = dict(self._loaded())
        state["_build"] = None
        return state

    def _loaded(self) -> Mapping[str, Split]:
        if self._data is None:
            data = self._build()
            missing = [s for s in self.splits if s not in data]
            if missing:
                raise ContractError(f"dataset {self.name!r}: build() gave no split(s) {missing}")
            self._data = data
        return self._data

    def split(self, name: str) -> Split:
        if name not in self.splits:
            raise KeyError(f"dataset {self.name!r} has no split {name!r}; it has {', '.join(self.splits)}")
        return self._loaded()[name]

    @property
    def info(self) -> dict[str, Any]:
        sizes = {s: len(self._loaded()[s]) for s in self.splits}
        return {**self._info, "split_sizes": sizes, "num_classes": len(self.classes)}

    @property
    def fingerprint(self) -> str:
        """Changes whenever the samples or labels of any split could: hashes labels and a sample digest."""
        h = hashlib.sha256(self.name.encode())
        h.update(repr(sorted(self._info.items())).encode())
        for s in self.splits:
            split = self._loaded()[s]
            h.update(s.encode())
            h.update(split.labels.tobytes())
            h.update(sample_digest(split.samples).encode())
        return h.hexdigest()[:16]


def sample_digest(samples: Sequence[Any]) -> str:
    """A digest of every sample of a split: a sequence's own ``digest()`` when it has one (lazy images hash
    their pixel array or files without decoding), else the content of each sample (PIL pixels, or text)."""
    own = getattr(samples, "digest", None)
    if callable(own):
        value = own()
        if value is not None:
            return str(value)
    h = hashlib.sha256(str(len(samples)).encode())
    for s in samples:
        if isinstance(s, Image.Image):
            h.update(f"{s.mode}{s.size}".encode())
            h.update(s.tobytes())
        else:
            h.update(str(s).encode())
            h.update(b"\0")
    return h.hexdigest()[:16]


def stratified_split(
    labels: np.ndarray, test_size: float | int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of a seeded stratified split (scikit-learn's ``train_test_split``), each sorted."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=labels)
    return np.sort(train), np.sort(test)


def take(split: Split, indices: Sequence[int] | np.ndarray) -> Split:
    """The split restricted to ``indices``; a lazy sample sequence with ``take()`` stays lazy (no decoding)."""
    indices = np.asarray(indices, dtype=np.int64)
    samples = split.samples
    lazy_take = getattr(samples, "take", None)
    picked = lazy_take(indices) if callable(lazy_take) else [samples[int(i)] for i in indices]
    return Split(picked, split.labels[indices])


def subsample(split: Split, n: int | None, seed: int) -> tuple[Split, str | None]:
    """A seeded subsample of ``n`` samples and how it was drawn: ``"stratified"``, or ``"uniform"`` when some
    class has a single sample (R52); ``(split, None)`` when ``n`` is None or not smaller than the split."""
    if n is None or n >= len(split):
        return split, None
    if n <= 0:
        raise OptionError(f"subsample size must be positive, got {n}")
    try:
        _, keep = stratified_split(split.labels, test_size=n, seed=seed)
        how = "stratified"
    except ValueError:
        keep = np.sort(np.random.default_rng(seed).choice(len(split), size=n, replace=False))
        how = "uniform"
    return take(split, keep), how


def split_all(split: Split, test_fraction: float, seed: int, owner: str = "dataset") -> tuple[Split, Split]:
    """One split cut into seeded stratified (train, test) splits: :func:`stratified_split` indices (sorted), so
    every dataset without an official split is cut the same way. ``owner`` names the dataset in errors.

    Raises OptionError for a ``test_fraction`` outside (0, 1), DataError when some class is too small to
    stratify.
    """
    checks.need_fraction(owner, "test_fraction", test_fraction)
    try:
        train, test = stratified_split(split.labels, test_fraction, seed)
    except ValueError as exc:  # a class with a single sample, or a test split smaller than the classes
        raise DataError(f"{owner}: cannot cut a seeded stratified test split of {test_fraction:g} from "
                        f"{len(split)} samples ({exc}); change test_fraction or give train and test splits") from exc
    return take(split, train), take(split, test)


def check_options(owner: str, options: Mapping[str, Any]) -> None:
    """OptionError for any of the options most datasets share, when present in ``options``: ``seed`` (an
    integer >= 0), ``test_fraction`` (in (0, 1)), ``train_size`` / ``test_size`` (None or >= 1), ``max_chars``
    (None or >= 0; 0 keeps texts whole), ``download`` (a bool) and ``root`` (a string). Other keys are ignored.
    """
    if "seed" in options:
        checks.need_int(owner, "seed", options["seed"], 0)
    if "test_fraction" in options:
        checks.need_fraction(owner, "test_fraction", options["test_fraction"])
    for name in ("train_size", "test_size"):
        if name in options:
            checks.need_int(owner, name, options[name], 1, optional=True)
    if "max_chars" in options:
        checks.need_int(owner, "max_chars", options["max_chars"], 0, optional=True)
    if "download" in options:
        checks.need_bool(owner, "download", options["download"])
    if "root" in options:
        checks.need_str(owner, "root", options["root"])


def options_validator(name: str) -> Callable[[Mapping[str, Any]], None]:
    """A spec validator for dataset ``name`` that runs :func:`check_options`."""

    def validate(options: Mapping[str, Any]) -> None:
        check_options(f"dataset {name!r}", options)

    validate.__doc__ = f"Checks the shared options of dataset {name!r} (see check_options)."
    return validate


def gray_images(array: np.ndarray, max_value: float = 255.0) -> list[Image.Image]:
    """(N, H, W) numbers in [0, max_value] -> a list of 8-bit grayscale PIL images."""
    scaled = np.clip(np.asarray(array, dtype=np.float64) * (255.0 / max_value), 0, 255).round().astype(np.uint8)
    return [Image.fromarray(a) for a in scaled]


def require_path(family: str, what: str = "file or folder") -> Callable[[str], None]:
    """A family spec's ``check_variant`` for ``<family><path>`` datasets (``imagefolder:``, ``csv:``): the path
    must exist when the plan is made, so a typo fails before any work instead of as a failed cell."""

    def check(variant: str) -> None:
        from pathlib import Path

        if not Path(variant).expanduser().exists():
            raise MissingData(f"dataset '{family}{variant}': no such file or folder {variant}; give the path "
                              f"of a {what}")

    return check
