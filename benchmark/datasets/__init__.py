"""Datasets: the building blocks plugin authors use, and the built-in dataset plugins beside them.

Building blocks: :mod:`~benchmark.datasets.base` (:class:`InMemoryDataset`, seeded :func:`stratified_split`,
:func:`subsample`, :func:`take`, :func:`split_all`, :func:`gray_images`), :mod:`~benchmark.datasets.images` (lazy
image sequences, IDX files, image folders) and :mod:`~benchmark.datasets.tables` (text tables, files inside
wheels, Hugging Face datasets). Built-in plugin modules, each a template for a third-party one:
:mod:`~benchmark.datasets.vision` (digits, mnist5k, fashion-mnist, imagefolder:),
:mod:`~benchmark.datasets.torchvision` (CIFAR, STL-10, SVHN, ...) and :mod:`~benchmark.datasets.text`.
"""

from benchmark.datasets.base import (
    InMemoryDataset,
    gray_images,
    sample_digest,
    stratified_split,
    subsample,
    take,
)

__all__ = ["InMemoryDataset", "gray_images", "sample_digest", "stratified_split", "subsample", "take"]
