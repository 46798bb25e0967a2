"""kNN protocol: against scikit-learn's KNeighborsClassifier and a hand-written DINO voting loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

import benchmark.protocols.neighbors as knn_module
from benchmark.protocols.builtin import Knn
from benchmark.protocols.knn import KNN_DEFAULTS, evaluate_knn
from benchmark.protocols.neighbors import knn_classify, topk_grouped
from benchmark.testing import ArrayTask, blobs


def _data(n_train=300, n_test=120, dim=24, n_classes=7, seed=0):
    rng = np.random.default_rng(seed)
    train_x = rng.normal(size=(n_train, dim)).astype(np.float32)
    test_x = rng.normal(size=(n_test, dim)).astype(np.float32)
    train_y = rng.integers(0, n_classes, n_train)
    return train_x, train_y, test_x


def _reference_dino(train_x, train_y, test_x, k, T, n_classes):
    """DINO's knn_classifier written out row by row in float64."""
    tr = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    te = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    out = []
    for q in te.astype(np.float64):
        sims = tr.astype(np.float64) @ q
        nn = np.argsort(-sims, kind="stable")[:k]
        votes = np.zeros(n_classes)
        for j in nn:
            votes[train_y[j]] += np.exp(sims[j] / T)
        out.append(int(np.argmax(votes)))
    return np.array(out)


@pytest.mark.parametrize("k", [1, 4, 20])
def test_uniform_identical_to_sklearn(k):
    # few classes and even k make vote ties frequent: the tie-break must match scikit-learn's
    train_x, train_y, test_x = _data(n_classes=4)
    ours = knn_classify(train_x, train_y, test_x, [k], weighting="uniform", chunk_rows=17).predictions[k]
    sk = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute").fit(train_x, train_y)
    np.testing.assert_array_equal(ours, sk.predict(test_x))


def test_uniform_ties_go_to_smaller_label():
    train_x = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0]], dtype=np.float32)
    train_y = np.array([3, 1, 2])
    pred = knn_classify(train_x, train_y, np.array([[1.0, 0.05]], np.float32), [2], weighting="uniform")
    assert pred.predictions[2].tolist() == [1]


@pytest.mark.parametrize("k", [5, 20])
def test_dino_weighting_matches_hand_written_reference_and_sklearn_callable(k):
    T = 0.07
    train_x, train_y, test_x = _data()
    ours = knn_classify(train_x, train_y, test_x, [k], temperature=T, chunk_rows=50).predictions[k]
    np.testing.assert_array_equal(ours, _reference_dino(train_x, train_y, test_x, k, T, 7))
    sk = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute",
                              weights=lambda d: np.exp((1.0 - d) / T)).fit(train_x, train_y)
    np.testing.assert_array_equal(ours, sk.predict(test_x))


def test_many_ks_in_one_pass_equal_separate_runs_and_chunking_is_invisible():
    train_x, train_y, test_x = _data()
    together = knn_classify(train_x, train_y, test_x, [1, 5, 20, 50], top_classes=5)
    for k in (1, 5, 20, 50):
        alone = knn_classify(train_x, train_y, test_x, [k], top_classes=5, chunk_rows=7)
        np.testing.assert_array_equal(together.predictions[k], alone.predictions[k])
        np.testing.assert_array_equal(together.topk_classes[k], alone.topk_classes[k])
        assert (together.topk_classes[k][:, 0] == together.predictions[k]).all()


@pytest.mark.parametrize("n, k, group", [(1000, 5, 8), (1003, 20, 8), (997, 3, 16), (64, 20, 8), (500, 1, 2)])
def test_grouped_topk_equals_torch_topk(n, k, group):
    sims = torch.from_numpy(np.random.default_rng(n + k).normal(size=(9, n)).astype(np.float32))
    vals, idx = topk_grouped(sims, k, group)
    ref = torch.topk(sims, k, dim=1, sorted=True)
    torch.testing.assert_close(vals, ref.values, rtol=0, atol=0)
    torch.testing.assert_close(idx, ref.indices, rtol=0, atol=0)  # continuous values: no ties


def test_large_train_set_identical_to_sklearn_on_both_cpu_matmul_paths(monkeypatch):
    # 2,000 train rows: the grouped top-k path (250 groups >= 4 k) is the one used
    train_x, train_y, test_x = _data(n_train=2000, n_test=150, n_classes=5, seed=3)
    sk = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute").fit(train_x, train_y)
    for flag in (True, False):
        monkeypatch.setattr(knn_module, "NUMPY_SGEMM", flag)
        ours = knn_classify(train_x, train_y, test_x, [20, 7], weighting="uniform", chunk_rows=64)
        np.testing.assert_array_equal(ours.predictions[20], sk.predict(test_x))
    dino = knn_classify(train_x, train_y, test_x, [20], temperature=0.07).predictions[20]
    np.testing.assert_array_equal(dino, _reference_dino(train_x, train_y, test_x, 20, 0.07, 5))


def test_bf16_precision_mostly_agrees():
    x, y = blobs(60, 6, 32, seed=2, spread=2.0)
    res32 = knn_classify(x[:300], y[:300], x[300:], [10])
    res16 = knn_classify(x[:300], y[:300], x[300:], [10], precision="bf16")
    assert (res32.predictions[10] == res16.predictions[10]).mean() > 0.95


@pytest.mark.parametrize("bad, match", [({"ks": [0]}, "positive"), ({"ks": [1000]}, "larger than the train"),
                                         ({"weighting": "cosine"}, "weighting"), ({"precision": "fp8"}, "precision")])
def test_bad_options_raise(bad, match):
    train_x, train_y, test_x = _data()
    kwargs = {"ks": [5]} | bad
    with pytest.raises(ValueError, match=match):
        knn_classify(train_x, train_y, test_x, **kwargs)


def _task(seed=0, n_per_class=40, n_classes=8):
    x, y = blobs(n_per_class, n_classes, 16, seed=seed, spread=2.5)
    n = len(y) * 3 // 4
    return ArrayTask({"train": (x[:n], y[:n]), "test": (x[n:], y[n:])}, seed=seed, num_classes=n_classes)


def test_protocol_reports_every_k_top5_and_is_deterministic():
    task = _task()
    out = evaluate_knn(task, **(KNN_DEFAULTS | {"ks": [1, 10, 20, 100, 1000]}))
    assert out.chosen == {"ks_skipped": [1000]}
    assert {"top1@k=1", "top1@k=10", "top1@k=20", "top1@k=100", "top5", "top5@k=20"} <= set(out.metrics)
    assert out.metrics["top1@k=20"] == pytest.approx((out.predictions == out.labels).mean())
    assert out.metrics["top5"] >= out.metrics["top1@k=20"] > 0.5
    again = evaluate_knn(task, **KNN_DEFAULTS | {"ks": [1, 10, 20, 100, 1000]})
    np.testing.assert_array_equal(out.predictions, again.predictions)
    assert out.metrics == again.metrics


def test_protocol_k_list_makes_first_primary_and_too_large_k_errors():
    task = _task()
    out = evaluate_knn(task, **KNN_DEFAULTS | {"k": [5, 50], "ks": []})
    assert set(out.metrics) >= {"top1@k=5", "top1@k=50"}
    assert out.metrics["top1@k=5"] == pytest.approx((out.predictions == out.labels).mean())
    with pytest.raises(ValueError, match="larger than the train split"):
        evaluate_knn(task, **KNN_DEFAULTS | {"k": 10_000})


def test_spec_declares_every_option():
    spec = {s.name: s for s in Knn.register_protocols()}["knn"]
    import inspect

    params = set(inspect.signature(spec.evaluate).parameters) - {"task"}
    assert params == set(spec.defaults) and spec.primary_metric == "top1"


@pytest.mark.gpu  # skipped without CUDA (tests/conftest.py)
def test_cuda_matches_cpu():
    train_x, train_y, test_x = _data()
    cpu = knn_classify(train_x, train_y, test_x, [20])
    gpu = knn_classify(train_x, train_y, test_x, [20], device="cuda")
    assert (cpu.predictions[20] == gpu.predictions[20]).mean() > 0.99


def test_dino_votes_do_not_overflow_at_small_temperature():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(60, 8)).astype(np.float32)
    labels = np.arange(60) % 3
    test = train[:20] + 1e-4 * rng.normal(size=(20, 8)).astype(np.float32)  # near-duplicates: sim ~ 1
    for t in (0.07, 0.005, 0.001):
        res = knn_classify(train, labels, test, [5], num_classes=3, temperature=t)
        np.testing.assert_array_equal(res.predictions[5], labels[:20])  # the duplicate's own label wins
