"""Built-in image datasets. A plain plugin module: copy it as the template for your own."""

from __future__ import annotations

from benchmark.data import InMemoryDataset, gray_images, stratified_split
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec, Split

DIGITS_TEST_FRACTION = 0.3


def load_digits(seed: int = 0, test_fraction: float = DIGITS_TEST_FRACTION) -> InMemoryDataset:
    """scikit-learn's 1,797 handwritten digits (8x8, values 0-16) as grayscale images.

    There is no official split: a seeded stratified 70/30 train/test split (seed 0 by default) is fixed here and
    recorded with every result.
    """
    from sklearn.datasets import load_digits as sk_digits

    def build() -> dict[str, Split]:
        bunch = sk_digits()
        images = gray_images(bunch.images, max_value=16.0)
        train, test = stratified_split(bunch.target, test_fraction, seed)
        return {
            "train": Split([images[i] for i in train], bunch.target[train]),
            "test": Split([images[i] for i in test], bunch.target[test]),
        }

    info = {"source": "sklearn.datasets.load_digits", "split": "stratified", "seed": seed,
            "test_fraction": test_fraction}
    return InMemoryDataset("digits", "image", [str(d) for d in range(10)], build, info)


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return [
        DatasetSpec(
            "digits",
            "image",
            load=load_digits,
            description="scikit-learn handwritten digits, 8x8 grayscale, 10 classes, seeded 70/30 split (offline)",
            defaults={"seed": 0, "test_fraction": DIGITS_TEST_FRACTION},
        )
    ]
