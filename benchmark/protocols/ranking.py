"""Per-query ranking metrics as ``trec_eval`` computes them (nDCG, MAP, recall, precision, MRR at k; see
:mod:`benchmark.protocols.qrels`), shared by ``qrels-retrieval`` and ``rerank``. A neutral module (no plugin hooks),
so that protocol plugins never import one another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: How documents of equal similarity are ordered: by descending document id (trec_eval's order) or corpus position.
TIE_BREAKS: tuple[str, ...] = ("docid", "corpus")


def ranking_metrics(grades: np.ndarray, judged: Sequence[np.ndarray], ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per-query ``<measure>@k`` (module doc) of ranked lists whose documents have ``grades`` (Q, depth) (0 for
    not relevant or unjudged), given every judged grade of each query (``judged``)."""
    g = np.clip(np.asarray(grades, np.int64), 0, None)
    q, depth = g.shape
    rel = g > 0
    n_rel = np.array([int((j > 0).sum()) for j in judged], dtype=np.float64)
    kmax = max(ks)
    ideal = np.zeros((q, kmax))
    for r, j in enumerate(judged):
        top = np.sort(np.clip(j, 0, None))[::-1][:kmax]
        ideal[r, :len(top)] = top
    discount = 1.0 / np.log2(np.arange(2, max(depth, kmax) + 2))
    dcg = np.cumsum(g * discount[:depth], axis=1)
    idcg = np.cumsum(ideal * discount[:kmax], axis=1)
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, depth + 1)
    prec_at_hit = np.where(rel, hits / ranks, 0.0)
    ap_sum = np.cumsum(prec_at_hit, axis=1)
    first = np.where(rel.any(1), rel.argmax(1) + 1, np.inf)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        c = min(k, depth) - 1
        found = hits[:, c] if depth else np.zeros(q)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[f"ndcg@{k}"] = np.where(idcg[:, k - 1] > 0, (dcg[:, c] if depth else 0) / idcg[:, k - 1], 0.0)
            out[f"map@{k}"] = np.where(n_rel > 0, (ap_sum[:, c] if depth else 0) / n_rel, 0.0)
            out[f"recall@{k}"] = np.where(n_rel > 0, found / n_rel, 0.0)
        out[f"precision@{k}"] = found / k
        out[f"mrr@{k}"] = np.where(first <= k, 1.0 / first, 0.0)
    return out
