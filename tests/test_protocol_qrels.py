"""qrels-retrieval equals pytrec_eval (trec_eval) to 1e-9 on graded qrels with score ties; rerank equals
scikit-learn's average precision and a hand-written MRR loop."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from benchmark.datasets.pairs import RetrievalData
from benchmark.errors import DataError
from benchmark.protocols.qrels import KS, evaluate_qrels
from benchmark.protocols.rerank import evaluate_rerank
from tests.test_protocol_sts_pairclass import FieldTask

pytrec_eval = pytest.importorskip("pytrec_eval", reason="pip install pytrec-eval-terrier (the test extra)")


def _synthetic(n_docs: int = 150, n_queries: int = 40, seed: int = 0, candidates: bool = False
               ) -> tuple[RetrievalData, dict[str, np.ndarray]]:
    """Embeddings on a coarse integer grid (many exactly tied cosines, duplicated documents), shuffled string ids
    (so that trec_eval's docid tie-break differs from corpus order), graded qrels 0..3 and queries whose only
    judgments are 0 (not scored)."""
    rng = np.random.default_rng(seed)
    corpus = rng.integers(-1, 2, size=(n_docs, 4)).astype(np.float32)
    queries = rng.integers(-1, 2, size=(n_queries, 4)).astype(np.float32)
    corpus[rng.integers(0, n_docs, 20)] = corpus[0]  # exact duplicates
    doc_ids = [f"d{v}" for v in rng.permutation(10 * n_docs)[:n_docs]]
    query_ids = [f"q{i}" for i in range(n_queries)]
    qrels: dict[str, dict[str, int]] = {}
    for i, qid in enumerate(query_ids):
        judged = rng.choice(n_docs, size=int(rng.integers(1, 12)), replace=False)
        qrels[qid] = {doc_ids[j]: int(rng.integers(0, 4)) for j in judged}
        if i % 10 == 9:
            qrels[qid] = {doc_ids[j]: 0 for j in judged}
    cands = None
    if candidates:
        cands = {qid: [doc_ids[j] for j in rng.choice(n_docs, size=25, replace=False)] + list(qrels[qid])[:3]
                 for qid in query_ids}
        cands = {q: list(dict.fromkeys(c)) for q, c in cands.items()}
    data = RetrievalData(query_ids, ["q"] * n_queries, doc_ids, ["d"] * n_docs, qrels, cands)
    return data, {"queries": queries, "corpus": corpus}


def _trec(data: RetrievalData, run: dict[str, dict[str, float]], measures: set[str]) -> dict[str, dict[str, float]]:
    return pytrec_eval.RelevanceEvaluator(data.qrels, measures).evaluate(run)


@pytest.mark.parametrize("seed,chunk_rows", [(0, None), (1, 7), (2, 3)])
def test_qrels_retrieval_equals_pytrec_eval_with_ties(seed, chunk_rows):
    data, emb = _synthetic(seed=seed)
    out = evaluate_qrels(FieldTask(data, emb), chunk_rows=chunk_rows)
    qids, doc_ids, idx, vals = out.saved["run"]
    run = {q: {doc_ids[j]: float(v) for j, v in zip(row, vrow, strict=False)} for q, row, vrow in zip(qids, idx, vals, strict=False)}
    cut = ",".join(map(str, KS))
    ref = _trec(data, run, {f"ndcg_cut.{cut}", f"map_cut.{cut}", f"recall.{cut}", f"P.{cut}"})
    scored = [q for q in data.query_ids if any(g > 0 for g in data.qrels[q].values())]
    assert sorted(qids) == sorted(scored) and out.metrics["n_queries"] == len(scored)
    for k in KS:
        for ours, theirs in (("ndcg", "ndcg_cut"), ("map", "map_cut"), ("recall", "recall"), ("precision", "P")):
            expected = np.mean([ref[q][f"{theirs}_{k}"] for q in scored])
            assert out.metrics[f"{ours}@{k}"] == pytest.approx(expected, abs=1e-9), (ours, k)
        # MRR@k: trec_eval's recip_rank of the run cut at k (trec_eval orders ties by descending docid)
        top_k = {q: dict(sorted(r.items(), key=lambda kv: (-kv[1], _neg(kv[0])))[:k]) for q, r in run.items()}
        rr = _trec(data, top_k, {"recip_rank"})
        assert out.metrics[f"mrr@{k}"] == pytest.approx(np.mean([rr[q]["recip_rank"] for q in scored]), abs=1e-9)


def _neg(s: str) -> list[int]:
    return [-ord(c) for c in s] + [1]  # descending string order as a sort key


def test_ranking_is_trec_order_and_exact_at_the_cut():
    data, emb = _synthetic(seed=4)
    out = evaluate_qrels(FieldTask(data, emb), ks=[5], chunk_rows=4)
    qids, doc_ids, idx, vals = out.saved["run"]
    q = emb["queries"] / np.linalg.norm(emb["queries"], axis=1, keepdims=True).clip(1e-12)
    c = emb["corpus"] / np.linalg.norm(emb["corpus"], axis=1, keepdims=True).clip(1e-12)
    for qid, row in zip(qids, idx, strict=False):
        sims = c @ q[data.query_ids.index(qid)]
        brute = sorted(range(len(doc_ids)), key=lambda j: (-round(float(sims[j]), 5), _neg(doc_ids[j])))[:5]
        assert list(row) == brute
    corpus_order = evaluate_qrels(FieldTask(data, emb), ks=[5], tie_break="corpus").saved["run"][2]
    assert not np.array_equal(corpus_order, idx)  # the two tie-breaks differ on this data


def test_rerank_equals_sklearn_ap_and_a_hand_written_mrr():
    data, emb = _synthetic(seed=5, candidates=True)
    out = evaluate_rerank(FieldTask(data, emb), tie_break="corpus")
    q = emb["queries"] / np.linalg.norm(emb["queries"], axis=1, keepdims=True).clip(1e-12)
    c = emb["corpus"] / np.linalg.norm(emb["corpus"], axis=1, keepdims=True).clip(1e-12)
    aps, rrs = [], []
    assert data.candidates is not None
    for qi, qid in enumerate(data.query_ids):
        cands = data.candidates[qid]
        rel = np.array([data.qrels[qid].get(d, 0) > 0 for d in cands])
        if not rel.any():
            continue
        scores = np.array([float(c[data.doc_ids.index(d)] @ q[qi]) for d in cands])
        aps.append(average_precision_score(rel, scores))
        order = np.argsort(-scores, kind="stable")
        first = next((r for r, j in enumerate(order[:10]) if rel[j]), None)
        rrs.append(0.0 if first is None else 1 / (first + 1))
    assert out.metrics["map"] == pytest.approx(np.mean(aps), abs=1e-9)
    assert out.metrics["mrr@10"] == pytest.approx(np.mean(rrs), abs=1e-9)
    assert out.metrics["n_queries"] == len(aps)


def test_retrieval_data_errors_name_the_field():
    base = dict(query_ids=["q1"], queries=["a"], doc_ids=["d1"], docs=["x"], qrels={"q1": {"d1": 1}})
    with pytest.raises(DataError, match="document 'd9'.*not in the corpus"):
        RetrievalData(**{**base, "qrels": {"q1": {"d9": 1}}})
    with pytest.raises(DataError, match="query 'q9'"):
        RetrievalData(**{**base, "qrels": {"q9": {"d1": 1}}})
    with pytest.raises(DataError, match="corpus is empty"):
        RetrievalData(**{**base, "doc_ids": [], "docs": []})
    with pytest.raises(DataError, match="document id 'd1' appears twice"):
        RetrievalData(**{**base, "doc_ids": ["d1", "d1"], "docs": ["x", "y"]})


def test_rerank_with_trec_ties_equals_pytrec_eval_on_the_candidate_run():
    data, emb = _synthetic(seed=6, candidates=True)
    out = evaluate_rerank(FieldTask(data, emb))  # tie_break="docid": trec_eval's order
    qids, doc_ids, idx, vals = out.saved["run"]
    run = {q: {doc_ids[j]: float(v) for j, v in zip(row, vrow, strict=True) if j >= 0}
           for q, row, vrow in zip(qids, idx, vals, strict=True)}
    top10 = {q: dict(sorted(r.items(), key=lambda kv: (-kv[1], _neg(kv[0])))[:10]) for q, r in run.items()}
    rr = _trec(data, top10, {"recip_rank"})
    ndcg = _trec(data, run, {"ndcg_cut.10"})
    assert out.metrics["mrr@10"] == pytest.approx(np.mean([rr[q]["recip_rank"] for q in qids]), abs=1e-9)
    assert out.metrics["ndcg@10"] == pytest.approx(np.mean([ndcg[q]["ndcg_cut_10"] for q in qids]), abs=1e-9)
