"""Pair classification on a ``labelled-pairs`` dataset (duplicates, paraphrases): MTEB's metrics.

For each similarity (``cosine``, ``dot``, ``euclidean`` and ``manhattan``, distances negated so that higher means
"more likely a duplicate"; :func:`benchmark.protocols.pairscores.pair_similarity`):

* ``<sim>_ap``: average precision of the similarity as a score for label 1, with tied scores forming one
  threshold (scikit-learn's ``average_precision_score``: sum over distinct thresholds of (R_n - R_n-1) P_n).
* ``<sim>_accuracy`` and ``<sim>_accuracy_threshold``: the best accuracy of "duplicate iff similarity >= t" over
  every threshold t, and the t reaching it (the midpoint to the next lower score, as MTEB reports it).
* ``<sim>_f1`` with ``<sim>_precision``, ``<sim>_recall`` and ``<sim>_f1_threshold``: the best F1 the same way.

Thresholds are *realizable*: a threshold never separates two pairs of equal similarity (MTEB's loop walks the
sorted pairs one by one and can credit a cut inside a run of ties that no threshold makes); every cut, the
"nothing is a duplicate" one included, is considered, and the first best (highest threshold) is kept. The tests
check each metric against scikit-learn and a brute-force sweep over every threshold.
``max_ap`` (primary), ``max_accuracy``, ``max_f1``: the best over the similarities (MTEB's main scores), with a
bootstrap interval over pairs for ``max_ap``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from benchmark import checks
from benchmark.datasets.pairs import LabelledPairs, task_data
from benchmark.errors import ContractError
from benchmark.hookspecs import hookimpl
from benchmark.protocols.pairscores import SIMILARITIES, average_precision, cuts, pair_similarity
from benchmark.protocols.resample import stat_ci
from benchmark.specs import EvalTask, ProtocolOutput, ProtocolSpec, defaults_of

OWNER = "protocol 'pairclass'"


def _midpoint(low: float, below: float) -> float:
    """The threshold of a cut: midway to the next lower score; the lowest score itself at the end; inf (null in
    the record) for the cut that predicts no duplicate."""
    if not np.isfinite(low) or not np.isfinite(below):
        return low
    return (low + below) / 2


def best_accuracy(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(best accuracy, its threshold) of "label 1 iff score >= t" over realizable thresholds."""
    k, tp, low, below = cuts(np.asarray(scores, np.float64), np.asarray(labels, np.int64))
    n, neg = len(labels), int((np.asarray(labels) == 0).sum())
    acc = (tp + (neg - (k - tp))) / n
    i = int(np.argmax(acc))
    return float(acc[i]), _midpoint(low[i], below[i])


def best_f1(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float, float, float]:
    """(best F1, its precision, its recall, its threshold) over realizable thresholds (cuts with a true
    positive; 0s when the labels have no 1)."""
    k, tp, low, below = cuts(np.asarray(scores, np.float64), np.asarray(labels, np.int64))
    pos = int(np.sum(labels))
    ok = tp > 0
    if not ok.any():
        return 0.0, 0.0, 0.0, float("nan")
    precision = np.where(ok, tp / np.maximum(k, 1), 0.0)
    recall = tp / max(pos, 1)
    f1 = np.where(ok, 2 * precision * recall / np.maximum(precision + recall, 1e-300), 0.0)
    i = int(np.argmax(f1))
    return float(f1[i]), float(precision[i]), float(recall[i]), _midpoint(low[i], below[i])


def _ap_rows(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return np.array([average_precision(s, y) if 0 < y.sum() < len(y) else np.nan for s, y in zip(scores, labels, strict=False)])


def pair_metrics(a: np.ndarray, b: np.ndarray, labels: np.ndarray, similarities: Sequence[str] = SIMILARITIES,
                 seed: int = 0) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(metrics, per-similarity scores) of embeddings ``a``, ``b`` (one row per pair) against 0/1 ``labels``."""
    if a.shape != b.shape or a.ndim != 2 or len(a) != len(labels):
        raise ContractError(f"{OWNER}: the two sides' features are {a.shape} and {b.shape} for {len(labels)} "
                            "pairs; each side needs one row per pair")
    labels = np.asarray(labels, np.int64)
    metrics: dict[str, Any] = {}
    scored: dict[str, np.ndarray] = {}
    for sim in similarities:
        s = scored[sim] = pair_similarity(a, b, sim)
        acc, acc_t = best_accuracy(s, labels)
        f1, p, r, f1_t = best_f1(s, labels)
        metrics.update({f"{sim}_accuracy": acc, f"{sim}_accuracy_threshold": acc_t, f"{sim}_f1": f1,
                        f"{sim}_precision": p, f"{sim}_recall": r, f"{sim}_f1_threshold": f1_t,
                        f"{sim}_ap": average_precision(s, labels)})
    for name in ("ap", "accuracy", "f1"):
        metrics[f"max_{name}"] = max(metrics[f"{sim}_{name}"] for sim in similarities)
    units = np.stack([scored[sim] for sim in similarities] + [labels.astype(np.float64)], axis=1)

    def max_ap(rows: np.ndarray) -> np.ndarray:  # rows: (block, n, sims + 1)
        y = rows[..., -1]
        return np.fmax.reduce(np.stack([_ap_rows(rows[..., j], y) for j in range(len(similarities))]), axis=0)

    metrics["max_ap_ci95"] = stat_ci(units, max_ap, seed=seed)
    metrics["n_pairs"] = int(len(labels))
    return metrics, scored


def evaluate_pairclass(task: EvalTask, similarities: Sequence[str] = SIMILARITIES) -> ProtocolOutput:
    """MTEB's pair-classification metrics for every similarity in ``similarities``; ``max_ap`` is primary."""
    validate_pairclass({"similarities": similarities})
    sims = [similarities] if isinstance(similarities, str) else list(similarities)
    data = task_data(task, LabelledPairs, OWNER)
    metrics, scored = pair_metrics(task.embeddings("sentence1"), task.embeddings("sentence2"), data.labels, sims,
                                   seed=task.seed)
    best = max(sims, key=lambda s: metrics[f"{s}_ap"])
    return ProtocolOutput(None, None, metrics, {"similarities": sims, "best_similarity": best},
                          saved={"pairs": (data.ids, scored[sims[0]], data.labels)})


PAIRCLASS_DEFAULTS: dict[str, Any] = defaults_of(evaluate_pairclass)


def validate_pairclass(options: Mapping[str, Any]) -> None:
    o = {**PAIRCLASS_DEFAULTS, **options}
    values = [o["similarities"]] if isinstance(o["similarities"], str) else o["similarities"]
    if not values:
        checks.need_choice(OWNER, "similarities", "", SIMILARITIES)
    for v in values:
        checks.need_choice(OWNER, "similarities", v, SIMILARITIES)


@hookimpl
def register_protocols() -> list[ProtocolSpec]:
    return [ProtocolSpec("pairclass", evaluate=evaluate_pairclass, primary_metric="max_ap",
                         validate=validate_pairclass, kinds=("labelled-pairs",), modalities=("text", "image"),
                         description="pair classification (duplicates, paraphrases): best-threshold accuracy and "
                                     "F1 and average precision over cosine/dot/euclidean/manhattan (MTEB)")]
