"""Datasets: the building blocks plugin authors use, and the built-in dataset plugins beside them.

Building blocks: :mod:`~benchmark.datasets.base` (:class:`InMemoryDataset`, seeded :func:`stratified_split`,
:func:`subsample`, :func:`take`, :func:`split_all`, :func:`gray_images`, and :func:`check_options` /
:func:`options_validator` for the options datasets share), :mod:`~benchmark.datasets.images` (lazy
image sequences, IDX files, image folders) and :mod:`~benchmark.datasets.tables` (text tables, files inside
wheels, Hugging Face datasets). Built-in plugin modules, each a template for a third-party one:
:mod:`~benchmark.datasets.vision` (digits, mnist5k, fashion-mnist, imagefolder:),
:mod:`~benchmark.datasets.torchvision` (CIFAR, STL-10, SVHN, ...) and :mod:`~benchmark.datasets.text`.
"""

from benchmark.datasets.base import (
    InMemoryDataset,
    check_options,
    gray_images,
    options_validator,
    sample_digest,
    split_all,
    stratified_split,
    subsample,
    take,
)

__all__ = ["InMemoryDataset", "check_options", "gray_images", "options_validator", "sample_digest", "split_all",
           "stratified_split", "subsample", "take"]
