"""Scores of pairs of embeddings shared by the pair protocols (``sts``, ``pairclass``, ``rerank``): the
similarity of two embeddings and the average precision of scores as a ranking of labels. A neutral module (no
plugin hooks), so that protocol plugins never import one another.
"""

from __future__ import annotations

import numpy as np

SIMILARITIES: tuple[str, ...] = ("cosine", "dot", "euclidean", "manhattan")


def pair_similarity(a: np.ndarray, b: np.ndarray, similarity: str = "cosine") -> np.ndarray:
    """(N,) float64 similarity of row i of ``a`` with row i of ``b``; distances are negated (higher = closer).
    A zero vector has cosine 0 with everything."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if similarity == "cosine":
        na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        return np.einsum("ij,ij->i", a, b) / np.maximum(na * nb, 1e-300)
    if similarity == "dot":
        return np.einsum("ij,ij->i", a, b)
    if similarity == "euclidean":
        return -np.linalg.norm(a - b, axis=1)
    if similarity == "manhattan":
        return -np.abs(a - b).sum(axis=1)
    raise ValueError(f"unknown similarity {similarity!r}")


def cuts(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per realizable cut (predict 1 for the top-k scores, k at each end of a run of ties, k = 0 first):
    (k, true positives, the lowest predicted score (inf for k=0), the next lower score (-inf at the end))."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last position of each tie run
    tp = np.cumsum(y)[ends]
    k = ends + 1
    lowest = s[ends]
    nxt = np.r_[s[ends[:-1] + 1], -np.inf]
    return (np.r_[0, k], np.r_[0, tp], np.r_[np.inf, lowest], np.r_[s[0] if len(s) else np.inf, nxt])


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision, tied scores forming one threshold (as scikit-learn's): sum of (R_n - R_n-1) P_n."""
    k, tp, _, _ = cuts(np.asarray(scores, np.float64), np.asarray(labels, np.int64))
    pos = int(np.sum(labels))
    if pos == 0:
        return float("nan")
    k, tp = k[1:], tp[1:]
    recall_step = np.diff(np.r_[0, tp]) / pos
    return float(np.sum(recall_step * tp / k))
