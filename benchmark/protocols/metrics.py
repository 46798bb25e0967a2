"""Scores the harness computes for every protocol from its test predictions: top-1 and a bootstrap 95% CI."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from benchmark.errors import ContractError, DataError

BOOTSTRAP_SAMPLES = 10_000


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy. ContractError when a protocol's predictions and labels are not matching 1-d arrays,
    DataError for an empty test set."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ContractError(f"the protocol returned predictions {predictions.shape} and labels {labels.shape}; "
                            "they must be matching 1-d arrays (one prediction per test sample)")
    if len(labels) == 0:
        raise DataError("cannot score an empty test set: the dataset's test split has no samples")
    return float((predictions == labels).mean())


def bootstrap_ci(correct: np.ndarray, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95
                 ) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of a 0/1 vector (resampling test examples with replacement).

    Resampling n Bernoulli outcomes with replacement and counting the ones is exactly a Binomial(n, k/n) draw, so
    the bootstrap distribution is sampled directly, without materialising (samples x n) indices.
    """
    correct = np.asarray(correct, dtype=bool)
    n = len(correct)
    rng = np.random.default_rng(seed)
    means = rng.binomial(n, correct.mean(), size=samples) / n
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return float(lo), float(hi)


def score(predictions: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, object]:
    """{"top1", "top1_ci95": [lo, hi], "n_test"} for test predictions."""
    top1 = accuracy(predictions, labels)
    lo, hi = bootstrap_ci(np.asarray(predictions) == np.asarray(labels), seed=seed)
    return {"top1": top1, "top1_ci95": [lo, hi], "n_test": int(len(labels))}


def mean_ci(values: Sequence[float]) -> tuple[float, float, list[float]]:
    """(mean, standard deviation with ddof=1, Student-t 95% interval of the mean) over seeds or draws; a single
    value is its own interval (std 0)."""
    mean = float(np.mean(values))
    if len(values) < 2:
        return mean, 0.0, [mean, mean]
    from scipy.stats import t

    std = float(np.std(values, ddof=1))
    half = float(t.ppf(0.975, len(values) - 1)) * std / math.sqrt(len(values))
    return mean, std, [mean - half, mean + half]
