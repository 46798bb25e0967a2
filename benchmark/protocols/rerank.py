"""Reranking on a ``retrieval`` dataset with candidate lists: protocol ``rerank``.

Each query ranks only its own candidates (``RetrievalData.candidates``) by cosine similarity; a candidate is
relevant when its judged grade is >= 1 (unjudged: not relevant). As MTEB's reranking evaluator reports them:

* ``map`` (primary): the mean over queries of the average precision of the similarity over the candidate list,
  tied similarities forming one threshold (scikit-learn's ``average_precision_score``, which MTEB calls);
* ``mrr@10``: 1 / rank of the first relevant candidate within the top 10, else 0;
* ``ndcg@10``: trec_eval's nDCG@10 of the candidate ranking (:func:`benchmark.protocols.qrels.ranking_metrics`),
  the ideal taken from the query's judgments.

Ties in the ranking (MRR, nDCG) follow ``tie_break`` as in ``qrels-retrieval``: descending document id
(trec_eval's order, default) or the candidate list's order. Queries with no relevant candidate are not scored
(counted in ``n_queries_without_relevant``); ``map_ci95`` is a bootstrap interval over queries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark import checks
from benchmark.datasets.pairs import RetrievalData, task_data
from benchmark.errors import DataError
from benchmark.hookspecs import hookimpl
from benchmark.protocols.pairscores import average_precision
from benchmark.protocols.ranking import TIE_BREAKS, ranking_metrics
from benchmark.protocols.resample import mean_ci
from benchmark.specs import EvalTask, ProtocolOutput, ProtocolSpec, defaults_of

OWNER = "protocol 'rerank'"


def rank_candidates(scores: np.ndarray, doc_ids: list[str], tie_break: str) -> np.ndarray:
    """Positions of the candidates in rank order: by score, ties by descending id or list order."""
    if tie_break == "docid":
        return np.array(sorted(range(len(scores)), key=lambda i: (-scores[i], _desc(doc_ids[i]))), dtype=np.int64)
    return np.argsort(-scores, kind="stable")


class _desc(str):  # noqa: N801  (a key wrapper: orders strings descending)
    def __lt__(self, other: str) -> bool:
        return str.__gt__(self, other)


def evaluate_rerank(task: EvalTask, tie_break: str = "docid") -> ProtocolOutput:
    """MAP (primary), MRR@10 and nDCG@10 of each query's candidate list ranked by cosine similarity."""
    validate_rerank({"tie_break": tie_break})
    data = task_data(task, RetrievalData, OWNER)
    if not data.candidates:
        raise DataError(f"{OWNER}: dataset {getattr(task, 'dataset_name', '?')!r} has no candidate lists; use "
                        "qrels-retrieval to search the whole corpus, or give candidates")
    q_emb, c_emb = task.embeddings("queries"), task.embeddings("corpus")
    q_emb = q_emb / np.maximum(np.linalg.norm(q_emb, axis=1, keepdims=True), 1e-12)
    c_emb = c_emb / np.maximum(np.linalg.norm(c_emb, axis=1, keepdims=True), 1e-12)
    doc_pos = {d: i for i, d in enumerate(data.doc_ids)}
    depth = max(len(c) for c in data.candidates.values())
    aps, grades_rows, judged, qids, ranked_idx, ranked_val = [], [], [], [], [], []
    for qi in data.scored_queries():
        qid = data.query_ids[qi]
        cands = data.candidates[qid]
        judged_q = data.qrels.get(qid, {})
        grades = np.array([judged_q.get(d, 0) for d in cands], np.int64)
        if not (grades > 0).any():
            continue
        idx = np.array([doc_pos[d] for d in cands], np.int64)
        scores = (c_emb[idx] @ q_emb[qi]).astype(np.float64)
        aps.append(average_precision(scores, (grades > 0).astype(np.int64)))
        order = rank_candidates(scores, cands, tie_break)
        grades_rows.append(np.pad(grades[order], (0, depth - len(order))))
        judged.append(np.array(list(judged_q.values()), np.int64))
        qids.append(qid)
        ranked_idx.append(np.pad(idx[order], (0, depth - len(order)), constant_values=-1))
        ranked_val.append(np.pad(scores[order], (0, depth - len(order))))
    if not aps:
        raise DataError(f"{OWNER}: no query has a relevant candidate; nothing to score")
    per_query = ranking_metrics(np.stack(grades_rows), judged, [10])
    ap = np.asarray(aps)
    metrics: dict[str, Any] = {"map": float(ap.mean()), "map_ci95": mean_ci(ap, seed=task.seed),
                               "mrr@10": float(per_query["mrr@10"].mean()),
                               "ndcg@10": float(per_query["ndcg@10"].mean()), "n_queries": len(ap),
                               "n_queries_without_relevant": len(data.query_ids) - len(ap)}
    saved = {"run": (qids, data.doc_ids, np.stack(ranked_idx), np.stack(ranked_val))}
    return ProtocolOutput(None, None, metrics, {"tie_break": tie_break}, saved=saved)


RERANK_DEFAULTS: dict[str, Any] = defaults_of(evaluate_rerank)


def validate_rerank(options: Mapping[str, Any]) -> None:
    o = {**RERANK_DEFAULTS, **options}
    checks.need_choice(OWNER, "tie_break", o["tie_break"], TIE_BREAKS)


@hookimpl
def register_protocols() -> list[ProtocolSpec]:
    return [ProtocolSpec("rerank", evaluate=evaluate_rerank, primary_metric="map", validate=validate_rerank,
                         kinds=("retrieval",), modalities=("text", "image"),
                         description="rerank each query's candidate list by cosine similarity: MAP (MTEB's), "
                                     "MRR@10 and nDCG@10")]
