"""Semantic textual similarity on a ``scored-pairs`` dataset: does the embedding's similarity order the pairs as
the gold scores do? As in MTEB's STS evaluator.

For every pair the similarity of its two embeddings is computed (``cosine``, default; ``dot``; negative
``euclidean`` or ``manhattan`` distance, so that higher always means more similar), and compared with the
gold scores by **Spearman's rank correlation** (primary; ties get their average rank) and Pearson's linear
correlation. Records store them as fractions in [-1, 1], as every repbench metric; the tables print them x 100,
which is the percent MTEB's tables show. ``spearman_ci95``: a percentile bootstrap interval over pairs
(:data:`~benchmark.protocols.resample.STAT_SAMPLES` resamples).

The correlations are computed here (float64, average ranks for ties) and checked in the tests against
``scipy.stats.spearmanr`` / ``pearsonr`` on the same embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark import checks
from benchmark.datasets.pairs import ScoredPairs, task_data
from benchmark.errors import ContractError, DataError
from benchmark.hookspecs import hookimpl
from benchmark.protocols.pairscores import SIMILARITIES, pair_similarity
from benchmark.protocols.resample import stat_ci
from benchmark.specs import EvalTask, ProtocolOutput, ProtocolSpec, defaults_of

OWNER = "protocol 'sts'"
def average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` along the last axis, ties sharing their average rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, axis=-1, kind="stable")
    sorted_x = np.take_along_axis(x, order, axis=-1)
    n = x.shape[-1]
    pos = np.broadcast_to(np.arange(1, n + 1, dtype=np.float64), x.shape)
    new = np.ones(x.shape, dtype=bool)
    new[..., 1:] = sorted_x[..., 1:] != sorted_x[..., :-1]
    group = np.cumsum(new, axis=-1) - 1  # tie-group number of each sorted position
    ranks_sorted = np.empty(x.shape)
    for row in np.ndindex(x.shape[:-1]):  # average the positions of each tie group
        g = group[row]
        sums = np.bincount(g, weights=pos[row])
        counts = np.bincount(g)
        ranks_sorted[row] = (sums / counts)[g]
    out = np.empty(x.shape)
    np.put_along_axis(out, order, ranks_sorted, axis=-1)
    return out


def pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation along the last axis (NaN when either side is constant)."""
    x = np.asarray(x, np.float64) - np.mean(x, axis=-1, keepdims=True)
    y = np.asarray(y, np.float64) - np.mean(y, axis=-1, keepdims=True)
    den = np.sqrt((x * x).sum(-1) * (y * y).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (x * y).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's rho along the last axis: Pearson of average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


def sts_scores(a: np.ndarray, b: np.ndarray, gold: np.ndarray, similarity: str = "cosine", seed: int = 0
               ) -> tuple[dict[str, Any], np.ndarray]:
    """(metrics, per-pair similarities) of embeddings ``a``, ``b`` (one row per pair) against ``gold``."""
    if a.shape != b.shape or a.ndim != 2 or len(a) != len(gold):
        raise ContractError(f"{OWNER}: the two sides' features are {a.shape} and {b.shape} for {len(gold)} pairs; "
                            "each side needs one row per pair")
    if len(gold) < 2:
        raise DataError(f"{OWNER}: {len(gold)} pair(s); a correlation needs at least two")
    sims = pair_similarity(a, b, similarity)
    gold = np.asarray(gold, np.float64)
    both = np.stack([sims, gold], axis=1)
    metrics: dict[str, Any] = {
        "spearman": float(spearman(sims, gold)),
        "pearson": float(pearson(sims, gold)),
        "spearman_ci95": stat_ci(both, lambda r: spearman(r[..., 0], r[..., 1]), seed=seed),
        "n_pairs": int(len(gold)),
    }
    return metrics, sims


def evaluate_sts(task: EvalTask, similarity: str = "cosine") -> ProtocolOutput:
    """Spearman (primary) and Pearson correlation of the pairs' ``similarity`` with the gold."""
    validate_sts({"similarity": similarity})
    data = task_data(task, ScoredPairs, OWNER)
    metrics, sims = sts_scores(task.embeddings("sentence1"), task.embeddings("sentence2"), data.scores,
                               similarity, seed=task.seed)
    return ProtocolOutput(None, None, metrics, {"similarity": similarity},
                          saved={"pairs": (data.ids, sims, data.scores)})


#: The options and their defaults, read from the signature of :func:`evaluate_sts`.
STS_DEFAULTS: dict[str, Any] = defaults_of(evaluate_sts)


def validate_sts(options: Mapping[str, Any]) -> None:
    o = {**STS_DEFAULTS, **options}
    checks.need_choice(OWNER, "similarity", o["similarity"], SIMILARITIES)


@hookimpl
def register_protocols() -> list[ProtocolSpec]:
    return [ProtocolSpec("sts", evaluate=evaluate_sts, primary_metric="spearman", validate=validate_sts,
                         kinds=("scored-pairs",), modalities=("text", "image"),
                         description="semantic similarity: Spearman (and Pearson) correlation of the pairs' cosine"
                                     " similarity with the gold scores (MTEB STS)")]
