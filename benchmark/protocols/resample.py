"""Percentile bootstrap intervals of statistics that are not a 0/1 mean (those use
:func:`benchmark.protocols.metrics.bootstrap_ci`): a mean of per-query values (nDCG, AP), a correlation over
pairs, an average precision over pairs. Resamples the units (queries, pairs) with replacement, seeded."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmark.protocols.metrics import BOOTSTRAP_SAMPLES

#: Resamples for statistics recomputed per resample (correlations, AP): each costs a sort of every unit.
STAT_SAMPLES = 1000
#: Resampled index rows per block (bounds memory to block x units int64).
BLOCK = 200


def mean_ci(values: np.ndarray, seed: int = 0, samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95
            ) -> list[float | None]:
    """95% percentile bootstrap interval of the mean of ``values`` (per-query scores); [None, None] for fewer
    than two values."""
    return stat_ci(values, lambda rows: rows.mean(axis=1), seed=seed, samples=samples, level=level)


def stat_ci(values: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], seed: int = 0,
            samples: int = STAT_SAMPLES, level: float = 0.95) -> list[float | None]:
    """Percentile bootstrap interval of ``statistic`` over units: ``values`` (n, ...) are the units;
    ``statistic(resampled)`` gets a (block, n, ...) array of resampled units and returns (block,) values.
    NaN statistics (a resample with one class only) are left out. [None, None] for fewer than two units."""
    values = np.asarray(values)
    n = len(values)
    if n < 2:
        return [None, None]
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, samples, BLOCK):
        idx = rng.integers(0, n, size=(min(BLOCK, samples - start), n))
        out.append(np.asarray(statistic(values[idx]), dtype=np.float64))
    stats = np.concatenate(out)
    stats = stats[np.isfinite(stats)]
    if not len(stats):
        return [None, None]
    alpha = (1 - level) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return [float(lo), float(hi)]
