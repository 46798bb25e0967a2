"""Retrieval judged by relevance (BEIR / MTEB retrieval) on a ``retrieval`` dataset: protocol ``qrels-retrieval``.

Not to be confused with ``retrieval`` (:mod:`benchmark.protocols.retrieval`), which judges by shared class.
Each query searches the whole corpus by cosine similarity; the top ``max(ks)`` documents (100 by default) are
scored against the graded judgments (qrels) exactly as ``trec_eval`` (and so ``pytrec_eval``, MTEB and BEIR)
scores them, per query, then averaged over the queries that have at least one relevant document (grade >= 1):

* ``ndcg@k``: DCG with linear gain (the grade) and discount log2(rank + 1), over the ideal DCG of the query's
  judged grades (trec_eval's ``ndcg_cut``);
* ``map@k``: the sum of precision at the rank of each relevant document within the top k, over the number of
  relevant documents R (``map_cut``); ``recall@k``: relevant in the top k / R (``recall``);
  ``precision@k``: relevant in the top k / k (``P``); ``mrr@k``: 1 / rank of the first relevant document within
  the top k, else 0 (``recip_rank`` of the run cut at k).

Search: exact, in chunks of queries (:func:`benchmark.protocols.knn.chunked_topk`, the loop kNN and label
retrieval share), so memory is bounded by one chunk's similarities, never queries x corpus.

Ties (deterministic, documented): documents of equal similarity are ranked by **descending document id**
(``tie_break="docid"``, default) — trec_eval's own order (it sorts a run by score, then by docno descending),
so a run file written here re-scores to the same numbers in any trec_eval; membership of the last places of
the top list is exact (:func:`exact_top`). ``tie_break="corpus"`` ranks ties by
position in the corpus instead. The tests check every metric against ``pytrec_eval`` to 1e-9, ties included.

A dataset with ``ignore_identical_ids`` (MTEB's ArguAna and Quora, whose corpus holds each query) never ranks
the document whose id is the query's id, as MTEB drops it: the search goes one deeper and removes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch

from benchmark import checks
from benchmark.datasets.pairs import RetrievalData, task_data
from benchmark.protocols.neighbors import TopkChunk, chunked_topk
from benchmark.protocols.ranking import TIE_BREAKS, ranking_metrics
from benchmark.protocols.resample import mean_ci
from benchmark.specs import EvalTask, ProtocolOutput, defaults_of

OWNER = "protocol 'qrels-retrieval'"
KS: tuple[int, ...] = (1, 3, 5, 10, 100)
MEASURES: tuple[str, ...] = ("ndcg", "map", "mrr", "recall", "precision")


def tie_order(doc_ids: Sequence[str], tie_break: str) -> np.ndarray:
    """The corpus permutation in which a smaller position wins a tie: descending id (trec_eval) or corpus order."""
    if tie_break == "corpus":
        return np.arange(len(doc_ids))
    return np.array(sorted(range(len(doc_ids)), key=lambda i: doc_ids[i], reverse=True), dtype=np.int64)


def search(queries: np.ndarray, corpus: np.ndarray, depth: int, order: np.ndarray, *, device: str = "cpu",
           chunk_rows: int | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Per chunk of queries: (first query row, (rows, depth) corpus indices, (rows, depth) similarities), ranked
    by similarity then by position in ``order`` (see the module); exact top ``depth``."""
    extra = int(depth < len(corpus))  # one more column tells whether a run of ties crosses the cut
    identity = np.array_equal(order, np.arange(len(order)))  # the corpus ranked in order, never copied
    chunks = chunked_topk(corpus, queries, depth + extra, device=device, chunk_rows=chunk_rows,
                          order=None if identity else order)
    with torch.inference_mode():
        for chunk in chunks:
            vals, idx = exact_top(chunk, depth)
            yield chunk.start, order[idx.cpu().numpy()], vals.float().cpu().numpy()


def exact_top(chunk: TopkChunk, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The chunk's top ``depth`` by (-similarity, index), exactly, from a top list one column longer (when the
    gallery has more than ``depth`` items): ordered by index then stably by value, a row whose ``depth``-th and
    next value are equal has a run of ties crossing the cut, and only such rows are re-ranked by a full stable
    sort of their similarities. Cheaper than :func:`benchmark.protocols.retrieval._exact_order`, which compares
    every similarity of the chunk with the last kept one."""
    vals, idx = chunk.values, chunk.indices
    by_index = torch.argsort(idx, dim=1)
    vals, idx = vals.gather(1, by_index), idx.gather(1, by_index)
    by_value = torch.sort(vals, dim=1, descending=True, stable=True).indices
    vals, idx = vals.gather(1, by_value), idx.gather(1, by_value)
    if vals.shape[1] > depth:
        rows = torch.nonzero(vals[:, depth - 1] == vals[:, depth]).flatten()
        vals, idx = vals[:, :depth].clone(), idx[:, :depth].clone()
        if len(rows):
            full = torch.sort(chunk.sims[rows], dim=1, descending=True, stable=True)
            vals[rows], idx[rows] = full.values[:, :depth], full.indices[:, :depth]
    return vals, idx


@dataclass
class Judgments:
    """The qrels of the scored queries as sorted int64 keys ``query row * n_docs + doc index`` and grades."""

    keys: np.ndarray
    grades: np.ndarray
    n_docs: int

    @classmethod
    def build(cls, data: RetrievalData, rows: Sequence[int]) -> Judgments:
        doc_pos = {d: i for i, d in enumerate(data.doc_ids)}
        keys, grades = [], []
        for r, q in enumerate(rows):
            for did, g in data.qrels.get(data.query_ids[q], {}).items():
                keys.append(r * len(data.doc_ids) + doc_pos[did])
                grades.append(g)
        key_arr, grade_arr = np.asarray(keys, np.int64), np.asarray(grades, np.int64)
        by = np.argsort(key_arr)
        return cls(key_arr[by], grade_arr[by], len(data.doc_ids))

    def lookup(self, first_row: int, idx: np.ndarray) -> np.ndarray:
        """(rows, depth) grades of the retrieved documents (0: not judged)."""
        want = (first_row + np.arange(len(idx)))[:, None] * self.n_docs + idx
        pos = np.searchsorted(self.keys, want).clip(max=max(len(self.keys) - 1, 0))
        hit = self.keys[pos] == want if len(self.keys) else np.zeros(want.shape, bool)
        return np.where(hit, self.grades[pos], 0)

    def per_query(self, rows: int) -> list[np.ndarray]:
        """Every judged grade of each query row."""
        bounds = np.searchsorted(self.keys // self.n_docs, np.arange(rows + 1))  # keys are sorted by row
        return [self.grades[bounds[r]:bounds[r + 1]] for r in range(rows)]


def summarize(per_query: Mapping[str, np.ndarray], primary: str, seed: int) -> dict[str, Any]:
    """Means over queries, a bootstrap interval over queries for ``primary``, and the query count."""
    metrics: dict[str, Any] = {k: float(np.mean(v)) if len(v) else None for k, v in per_query.items()}
    metrics[f"{primary}_ci95"] = mean_ci(per_query[primary], seed=seed)
    metrics["n_queries"] = int(len(per_query[primary]))
    return metrics


def evaluate_qrels(task: EvalTask, ks: Sequence[int] = KS, tie_break: str = "docid",
                   chunk_rows: int | None = None) -> ProtocolOutput:
    """nDCG / MAP / MRR / recall / precision at every k in ``ks`` over the corpus; ``ndcg@10`` is primary."""
    validate_qrels({"ks": ks, "tie_break": tie_break, "chunk_rows": chunk_rows})
    ks = sorted({int(cast(int, ks))} if checks.is_int(ks) else {int(k) for k in ks})
    data = task_data(task, RetrievalData, OWNER)
    rows = data.scored_queries()
    queries, corpus = task.embeddings("queries")[rows], task.embeddings("corpus")
    own = own_documents(data, rows) if data.ignore_identical_ids else None
    depth = min(len(corpus) - (own is not None), max(ks))
    judgments = Judgments.build(data, rows)
    idx_all = np.zeros((len(rows), depth), np.int64)
    val_all = np.zeros((len(rows), depth), np.float32)
    for start, idx, vals in search(queries, corpus, depth + (own is not None), tie_order(data.doc_ids, tie_break),
                                   device=task.device, chunk_rows=chunk_rows):
        if own is not None:
            idx, vals = drop_own(idx, vals, own[start:start + len(idx)], depth)
        idx_all[start:start + len(idx)], val_all[start:start + len(idx)] = idx, vals
    per_query = ranking_metrics(judgments.lookup(0, idx_all), judgments.per_query(len(rows)), ks)
    primary = "ndcg@10" if 10 in ks else f"ndcg@{ks[0]}"
    metrics = summarize(per_query, primary, task.seed)
    metrics.update(corpus_size=len(corpus), n_queries_without_relevant=len(data.query_ids) - len(rows))
    chosen = {"ks": ks, "tie_break": tie_break, "depth": depth}
    qids = [data.query_ids[r] for r in rows]
    return ProtocolOutput(None, None, metrics, chosen, saved={"run": (qids, data.doc_ids, idx_all, val_all)})


def own_documents(data: RetrievalData, rows: Sequence[int]) -> np.ndarray:
    """Per scored query, the corpus index of the document with the query's id, -1 when there is none."""
    doc_pos = {d: i for i, d in enumerate(data.doc_ids)}
    return np.array([doc_pos.get(data.query_ids[r], -1) for r in rows], dtype=np.int64)


def drop_own(idx: np.ndarray, vals: np.ndarray, own: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """MTEB's ``ignore_identical_ids``: each row's ranking without its query's own document, cut to ``depth``
    (searched one deeper, so the cut stays exact); the order of the others is kept."""
    keep = np.argsort(idx == own[:, None], axis=1, kind="stable")[:, :depth]
    return np.take_along_axis(idx, keep, 1), np.take_along_axis(vals, keep, 1)


QRELS_DEFAULTS: dict[str, Any] = defaults_of(evaluate_qrels)


def validate_qrels(options: Mapping[str, Any]) -> None:
    o = {**QRELS_DEFAULTS, **options}
    checks.need_int_list(OWNER, "ks", o["ks"], allow_empty=False)
    checks.need_choice(OWNER, "tie_break", o["tie_break"], TIE_BREAKS)
    checks.need_int(OWNER, "chunk_rows", o["chunk_rows"], 1, optional=True)
