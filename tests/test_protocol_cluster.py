"""cluster protocol: our k-means against scikit-learn's KMeans, the scores against sklearn.metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics
from sklearn.cluster import KMeans

from benchmark.errors import DataError, OptionError
from benchmark.protocols.cluster import CLUSTER_DEFAULTS, evaluate_cluster, kmeans, validate_cluster
from benchmark.testing import ArrayTask, blobs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_partition_as_sklearn_from_the_same_initial_centres(seed, monkeypatch):
    import benchmark.protocols.cluster as cluster

    monkeypatch.setattr(cluster, "CHUNK_BYTES", 4 * 5 * 13)  # 13 rows per assignment chunk: smaller than the data
    x, _ = blobs(60, 5, 8, seed=seed, spread=2.5)  # overlapping blobs: Lloyd needs several iterations
    ours = kmeans(x, 5, seed=seed)
    ref = KMeans(5, init=ours.init, n_init=1, algorithm="lloyd", tol=1e-4, max_iter=300).fit(x)
    assert np.array_equal(ours.labels, ref.labels_)
    assert ours.inertia == pytest.approx(ref.inertia_, rel=1e-5)
    np.testing.assert_allclose(ours.centers, ref.cluster_centers_, atol=1e-4)
    assert ours.n_iter > 1


def test_kmeans_plus_plus_is_seeded_and_reaches_sklearns_solution_on_separated_blobs():
    x, y = blobs(50, 4, 6, seed=3, spread=0.3)
    a, b = kmeans(x, 4, seed=7), kmeans(x, 4, seed=7)
    assert np.array_equal(a.init, b.init) and np.array_equal(a.labels, b.labels)
    ref = KMeans(4, n_init=10, random_state=0).fit(x)
    assert metrics.adjusted_rand_score(ref.labels_, a.labels) == 1.0
    assert a.inertia == pytest.approx(ref.inertia_, rel=1e-5)
    # every initial centre is a data point
    assert all((np.abs(x - c).sum(1) == 0).any() for c in a.init)


def test_evaluate_scores_each_seed_with_sklearn_metrics():
    x, y = blobs(40, 6, 10, seed=0, spread=2.0)
    task = ArrayTask({"train": blobs(5, 6, 10), "test": (x, y)}, seed=2)
    out = evaluate_cluster(task, seeds=3)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    nmis, aris, vms = [], [], []
    for seed in out.chosen["seeds"]:
        labels = kmeans(xn, 6, seed=seed).labels
        nmis.append(metrics.normalized_mutual_info_score(y, labels))
        aris.append(metrics.adjusted_rand_score(y, labels))
        vms.append(metrics.v_measure_score(y, labels))
    assert out.chosen["seeds"] == [2000, 2001, 2002] and out.chosen["k"] == 6
    assert out.metrics["nmi_runs"] == pytest.approx(nmis) and out.metrics["ari_runs"] == pytest.approx(aris)
    assert out.metrics["nmi"] == pytest.approx(np.mean(nmis)) and out.metrics["v_measure"] == pytest.approx(
        np.mean(vms))
    assert out.metrics["nmi_std"] == pytest.approx(np.std(nmis, ddof=1))
    lo, hi = out.metrics["nmi_ci95"]
    assert lo <= out.metrics["nmi"] <= hi
    assert out.metrics["v_measure"] == pytest.approx(out.metrics["nmi"], abs=1e-9)  # the same score (arithmetic)
    raw = evaluate_cluster(task, seeds=1, normalize=False)
    labels = kmeans(x, 6, seed=2000).labels
    assert raw.metrics["nmi"] == pytest.approx(metrics.normalized_mutual_info_score(y, labels))


def test_an_empty_cluster_is_reseeded():
    x, _ = blobs(30, 3, 4, seed=2, spread=0.2)
    init = np.stack([x[0], x[0], x[1]])  # two equal centres: the second gets no point in the first assignment
    res = kmeans(x, 3, init=init)
    assert len(np.unique(res.labels)) == 3 and np.isfinite(res.centers).all()


def test_perfect_and_errors():
    x, y = blobs(20, 3, 4, seed=1, spread=0.01)
    assert evaluate_cluster(ArrayTask({"train": (x, y), "test": (x, y)}), seeds=2).metrics["ari"] == 1.0
    with pytest.raises(DataError, match="cannot make 3 clusters from 2 samples"):
        kmeans(x[:2], 3)


@pytest.mark.parametrize(("options", "message"), [
    ({"seeds": 0}, "protocol 'cluster': option seeds must be an integer >= 1"),
    ({"normalize": "yes"}, "option normalize must be true or false"),
    ({"max_iter": 0}, "option max_iter"),
    ({"tol": -1.0}, "option tol"),
])
def test_validator_rejects_bad_options(options, message):
    validate_cluster(CLUSTER_DEFAULTS)
    with pytest.raises(OptionError, match=message):
        validate_cluster(options)


@pytest.mark.gpu
def test_cuda_gives_the_cpu_partition():
    x, _ = blobs(80, 6, 16, seed=4, spread=1.0)
    cpu, gpu = kmeans(x, 6, seed=3), kmeans(x, 6, seed=3, device="cuda")
    np.testing.assert_allclose(cpu.init, gpu.init, atol=1e-6)  # the seed draws on the CPU generator
    assert metrics.adjusted_rand_score(cpu.labels, gpu.labels) == 1.0
