"""sts and pairclass equal their independent references (scipy, scikit-learn, a brute-force threshold sweep) on
the same embeddings, ties included."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cosine
from sklearn.metrics import average_precision_score, f1_score

from benchmark.datasets.pairs import FieldTaskDataset, LabelledPairs, ScoredPairs
from benchmark.errors import ContractError, DataError, OptionError
from benchmark.protocols.pairclass import average_precision, best_accuracy, best_f1, evaluate_pairclass
from benchmark.protocols.sts import average_ranks, evaluate_sts, pair_similarity


class FieldTask:
    """A minimal EvalTask over a task-kind dataset with given field embeddings."""

    def __init__(self, data: Any, embeddings: dict[str, np.ndarray]) -> None:
        self.dataset = FieldTaskDataset("toy", data)
        self.dataset_name, self.seed, self.device = "toy", 0, "cpu"
        self._emb = embeddings

    def embeddings(self, field: str) -> np.ndarray:
        return self._emb[field]


def _pairs(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, 16)).astype(np.float32)
    b = (a + rng.normal(scale=1.5, size=(n, 16))).astype(np.float32)
    b[:20] = a[:20]  # identical pairs: ties at cosine 1
    return a, b, [f"p{i}" for i in range(n)]


def test_average_ranks_equal_scipy_rankdata_with_ties():
    x = np.random.default_rng(1).integers(0, 7, size=(3, 50)).astype(float)
    np.testing.assert_array_equal(average_ranks(x), stats.rankdata(x, axis=1))


def test_sts_equals_scipy_spearman_and_pearson():
    a, b, ids = _pairs()
    gold = np.round(pair_similarity(a, b) * 5) / 5  # coarse gold scores: many ties
    gold = gold + np.random.default_rng(2).normal(scale=0.3, size=len(gold)).round(1)
    out = evaluate_sts(FieldTask(ScoredPairs(ids, ["x"] * len(ids), ["y"] * len(ids), gold),
                                 {"sentence1": a, "sentence2": b}))
    cos = np.array([1 - cosine(u, v) for u, v in zip(a.astype(np.float64), b.astype(np.float64), strict=False)])
    saved_ids, sims, saved_gold = out.saved["pairs"]
    np.testing.assert_allclose(sims, cos, atol=1e-12)  # the similarities are scipy's (to rounding) ...
    # ... and the correlations of those similarities are scipy's, ties in the gold included
    assert out.metrics["spearman"] == pytest.approx(stats.spearmanr(sims, gold).statistic, abs=1e-9)
    assert out.metrics["pearson"] == pytest.approx(stats.pearsonr(sims, gold).statistic, abs=1e-9)
    lo, hi = out.metrics["spearman_ci95"]
    assert lo < out.metrics["spearman"] < hi and out.metrics["n_pairs"] == len(ids)
    assert saved_ids == ids and np.array_equal(saved_gold, gold)


def test_sts_other_similarities_equal_scipy():
    a, b, ids = _pairs(seed=3)
    gold = np.random.default_rng(4).normal(size=len(ids))
    for sim, ref in (("euclidean", -np.linalg.norm(a - b, axis=1)), ("manhattan", -np.abs(a - b).sum(1)),
                     ("dot", (a.astype(float) * b).sum(1))):
        out = evaluate_sts(FieldTask(ScoredPairs(ids, ["x"] * len(ids), ["y"] * len(ids), gold),
                                     {"sentence1": a, "sentence2": b}), similarity=sim)
        assert out.metrics["spearman"] == pytest.approx(stats.spearmanr(ref, gold).statistic, abs=1e-9)


def _brute(scores: np.ndarray, labels: np.ndarray, f1: bool = True) -> tuple[float, float]:
    """Best accuracy and F1 of "1 iff score >= t" over every threshold t that changes a prediction."""
    best_acc, best_f = 0.0, 0.0
    for t in np.r_[np.unique(scores), np.inf]:
        pred = (scores >= t).astype(int)
        best_acc = max(best_acc, float((pred == labels).mean()))
        if f1:
            best_f = max(best_f, float(f1_score(labels, pred, zero_division=0)))
    return best_acc, best_f


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairclass_metrics_equal_sklearn_and_a_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=200)
    scores = np.round(labels * 0.6 + rng.normal(size=200), 1)  # rounded: many tied scores
    assert average_precision(scores, labels) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    acc, f1 = _brute(scores, labels)
    got_acc, threshold = best_accuracy(scores, labels)
    assert got_acc == pytest.approx(acc, abs=1e-12)
    assert float(((scores >= threshold) == labels).mean()) == pytest.approx(acc, abs=1e-12)  # threshold reaches it
    got_f1, p, r, f1_t = best_f1(scores, labels)
    assert got_f1 == pytest.approx(f1, abs=1e-12)
    assert f1_score(labels, (scores >= f1_t).astype(int)) == pytest.approx(f1, abs=1e-12)
    assert 2 * p * r / (p + r) == pytest.approx(got_f1)


def test_pairclass_protocol_over_every_similarity():
    a, b, ids = _pairs(seed=5)
    labels = np.r_[np.ones(150, int), np.zeros(150, int)]
    b[150:] = np.random.default_rng(6).normal(size=(150, 16))
    out = evaluate_pairclass(FieldTask(LabelledPairs(ids, ["x"] * 300, ["y"] * 300, labels),
                                       {"sentence1": a, "sentence2": b}))
    m = out.metrics
    for sim in ("cosine", "dot", "euclidean", "manhattan"):
        s = pair_similarity(a, b, sim)
        assert m[f"{sim}_ap"] == pytest.approx(average_precision_score(labels, s), abs=1e-12)
        assert m[f"{sim}_accuracy"] == pytest.approx(_brute(s, labels, f1=False)[0], abs=1e-12)
    assert m["max_ap"] == max(m[f"{s}_ap"] for s in ("cosine", "dot", "euclidean", "manhattan"))
    lo, hi = m["max_ap_ci95"]
    assert lo <= m["max_ap"] <= hi <= 1


def test_pair_data_and_options_fail_in_one_line():
    with pytest.raises(DataError, match="label"):
        LabelledPairs(["a", "b"], ["x", "y"], ["x", "y"], [0, 2])
    with pytest.raises(DataError, match="pair id 'a' appears twice"):
        ScoredPairs(["a", "a"], ["x", "y"], ["x", "y"], [0.0, 1.0])
    with pytest.raises(OptionError, match="similarity"):
        evaluate_sts(FieldTask(ScoredPairs(["a", "b"], ["x", "y"], ["x", "y"], [0.0, 1.0]), {}), similarity="l3")
    with pytest.raises(ContractError, match="not LabelledPairs"):
        evaluate_pairclass(FieldTask(ScoredPairs(["a", "b"], ["x", "y"], ["x", "y"], [0.0, 1.0]), {}))
