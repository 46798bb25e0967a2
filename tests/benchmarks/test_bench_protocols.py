"""Speed of the kNN and linear protocols against the references they must agree with, measured in one run.

Run: ``pytest tests/benchmarks --benchmark-enable`` (each test also passes as a plain, quick test with benchmarks
disabled). Sizes scale with ``REPBENCH_BENCH_SCALE`` (default 0.02: 1,000 samples where that is more, about a minute on 2 busy cores); the full target sizes
(``REPBENCH_BENCH_SCALE=1``) are:

* kNN: 50,000 train x 10,000 test x 768 dims, 100 classes, k=20, against scikit-learn
  ``KNeighborsClassifier(metric="cosine", algorithm="brute")`` and faiss ``IndexFlatIP``; predictions identical.
* linear: 20,000 train x 768 dims x 100 classes (5,000 test), one fit at C=0.01 and the 5-point C sweep with
  refit, against scikit-learn ``LogisticRegression`` (lbfgs, tol=1e-4, max_iter=1000, warm_start for the
  sweep) on the same standardised float32 features (which scikit-learn keeps in float32); test accuracy within
  0.5 points. The sweep runs with the protocol's default early stop (``patience``) against scikit-learn's full
  sweep: the same validation accuracy at every C we evaluated, and within 0.5 points whenever both pick the
  same C.

Threads: both sides always get the same number, ``REPBENCH_BENCH_THREADS`` (default: every core, which is what
torch, OpenBLAS/MKL and faiss each use by default), pinned for torch (``set_num_threads``), the BLAS and OpenMP
pools of numpy/scikit-learn (threadpoolctl) and faiss (``omp_set_num_threads``), and recorded as ``threads``.
Set it to 1 on a machine shared with other work: a multi-threaded run whose threads get descheduled measures
the neighbours, not the code.

Each test stores the reference's time and the ratio ``reference_s / ours_s`` (> 1: we are faster) in the
benchmark's ``extra_info`` and prints them.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

from benchmark.protocols.linear import LINEAR_DEFAULTS
from benchmark.protocols.logreg import DEFAULT_CS, carve_val, fit_logreg, standardizer, sweep_C
from benchmark.protocols.neighbors import knn_classify

SCALE = float(os.environ.get("REPBENCH_BENCH_SCALE", "0.02"))
THREADS = int(os.environ.get("REPBENCH_BENCH_THREADS", "0") or 0) or os.cpu_count() or 1
DIM = 768
N_CLASSES = 100


@pytest.fixture(scope="module", autouse=True)
def _same_threads_for_everyone():
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        import faiss

        faiss.omp_set_num_threads(THREADS)
    except ImportError:
        pass
    with threadpool_limits(limits=THREADS):
        yield
    torch.set_num_threads(before)


def _n(full: int) -> int:
    return max(N_CLASSES * 10, int(full * SCALE))


def _clustered(n: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class centres (shared across calls) plus isotropic noise: float32 (n, DIM), int64 labels."""
    centres = np.random.default_rng(1234).normal(size=(N_CLASSES, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % N_CLASSES)  # balanced: every class in every stratified part
    return (centres[y] + noise * rng.standard_normal((n, DIM), dtype=np.float32)), y


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def _record(benchmark, name: str, ours_s: float, ref_s: float, **extra) -> None:
    benchmark.extra_info.update({"ours_s": round(ours_s, 4), f"{name}_s": round(ref_s, 4),
                                 f"ratio_{name}_over_ours": round(ref_s / ours_s, 3), "scale": SCALE, "threads": THREADS,
                                 **extra})
    print(f"\n[{benchmark.name}] scale={SCALE} threads={THREADS} ours={ours_s:.3f}s {name}={ref_s:.3f}s "
          f"ratio={ref_s / ours_s:.2f}x {extra}")


@pytest.fixture(scope="module")
def knn_data():
    train_x, train_y = _clustered(_n(50_000), noise=3.0, seed=0)
    test_x, _ = _clustered(_n(10_000), noise=3.0, seed=1)
    return train_x, train_y, test_x


def _ours(benchmark, fn, *args, **kwargs):
    box = {}

    def run():
        box["out"], box["s"] = _timed(fn, *args, **kwargs)
        return box["out"]

    benchmark.pedantic(run, rounds=1, iterations=1)
    return box["out"], box["s"]


def test_bench_knn_vs_sklearn(benchmark, knn_data):
    from sklearn.neighbors import KNeighborsClassifier

    train_x, train_y, test_x = knn_data
    ours, ours_s = _ours(benchmark, knn_classify, train_x, train_y, test_x, [20], weighting="uniform",
                         num_classes=N_CLASSES)
    clf = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute").fit(train_x, train_y)
    ref, ref_s = _timed(clf.predict, test_x)
    np.testing.assert_array_equal(ours.predictions[20], ref)
    _record(benchmark, "sklearn", ours_s, ref_s, n_train=len(train_x), n_test=len(test_x))


def test_bench_knn_vs_faiss(benchmark, knn_data):
    faiss = pytest.importorskip("faiss")
    train_x, train_y, test_x = knn_data
    ks = [10, 20, 100, 200]
    ours, ours_s = _ours(benchmark, knn_classify, train_x, train_y, test_x, ks, num_classes=N_CLASSES)

    def faiss_knn():
        tr = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
        te = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
        index = faiss.IndexFlatIP(DIM)
        index.add(tr)
        sims, idx = index.search(te, max(ks))
        out = {}
        for k in ks:  # DINO voting on faiss's neighbours
            votes = np.zeros((len(te), N_CLASSES), np.float32)
            np.add.at(votes, (np.arange(len(te))[:, None], train_y[idx[:, :k]]), np.exp(sims[:, :k] / 0.07))
            out[k] = votes.argmax(axis=1)
        return out

    ref, ref_s = _timed(faiss_knn)
    for k in ks:
        agree = (ours.predictions[k] == ref[k]).mean()
        assert agree >= 0.999, f"k={k}: only {agree:.4%} of predictions agree with faiss"
    np.testing.assert_array_equal(ours.predictions[20], ref[20])
    _record(benchmark, "faiss", ours_s, ref_s, ks=ks)


@pytest.fixture(scope="module")
def linear_data():
    x, y = _clustered(_n(20_000) + _n(5_000), noise=8.0, seed=2)
    n = _n(20_000)
    mean, scale = standardizer(x[:n])
    fit_logreg(x[:200], y[:200], 1.0, max_iter=5)  # warm-up: torch's first L-BFGS call pays one-off set-up
    return x[:n], y[:n], x[n:], y[n:], (mean, scale)


def _sklearn_fit(x, y, C, model=None):
    from sklearn.linear_model import LogisticRegression

    model = model or LogisticRegression(C=C, max_iter=1000, warm_start=True)
    model.set_params(C=C)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(x, y)


def test_bench_linear_one_C_vs_sklearn(benchmark, linear_data):
    x, y, xt, yt, (mean, scale) = linear_data
    ours, ours_s = _ours(benchmark, fit_logreg, x, y, 0.01, stats=(mean, scale))
    sk, ref_s = _timed(_sklearn_fit, (x - mean) / scale, y, 0.01)
    acc_ours = (ours.predict(xt) == yt).mean()
    acc_sk = (sk.predict((xt - mean) / scale) == yt).mean()
    assert abs(acc_ours - acc_sk) <= 0.005, (acc_ours, acc_sk)
    _record(benchmark, "sklearn", ours_s, ref_s, top1_ours=float(acc_ours), top1_sklearn=float(acc_sk),
            iters_ours=ours.n_iter, iters_sklearn=int(sk.n_iter_[0]))


def test_bench_linear_sweep_vs_sklearn(benchmark, linear_data):
    x, y, xt, yt, (mean, scale) = linear_data
    tr, va, _ = carve_val(y, 0.2, seed=0)
    tr_x, tr_y, va_x, va_y = x[tr], y[tr], x[va], y[va]
    ours, ours_s = _ours(benchmark, sweep_C, tr_x, tr_y, va_x, va_y, DEFAULT_CS,
                         patience=LINEAR_DEFAULTS["patience"])

    def sklearn_sweep():
        xs, vs = (tr_x - mean) / scale, (va_x - mean) / scale
        model, scores, coefs = None, {}, {}
        for C in sorted(DEFAULT_CS):
            model = _sklearn_fit(xs, tr_y, C, model)
            scores[C] = (model.predict(vs) == va_y).mean()
            coefs[C] = (model.coef_.copy(), model.intercept_.copy())
        best = max(scores, key=lambda c: (scores[c], -c))
        model.coef_, model.intercept_ = coefs[best]
        return best, scores, _sklearn_fit((x - mean) / scale, y, best, model)

    (best, val_sk, sk), ref_s = _timed(sklearn_sweep)
    for C in ours.evaluated:  # the same validation curve (up to solver tolerance: 1 point or 2 samples)
        assert abs(ours.val_top1[C] - val_sk[C]) <= max(0.01, 2 / len(va_y)), (C, ours.val_top1, val_sk)
    acc_ours = (ours.model.predict(xt) == yt).mean()
    acc_sk = (sk.predict((xt - mean) / scale) == yt).mean()
    # a near-tie on validation may pick a neighbouring C; the test accuracies then differ by that C's effect
    assert abs(acc_ours - acc_sk) <= (0.005 if best == ours.C else 0.02), (acc_ours, acc_sk, ours.C, best)
    _record(benchmark, "sklearn", ours_s, ref_s, C_ours=ours.C, C_sklearn=best, top1_ours=float(acc_ours),
            top1_sklearn=float(acc_sk), Cs_evaluated_ours=ours.evaluated, iters_ours=ours.iters)
