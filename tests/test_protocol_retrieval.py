"""retrieval protocol: mAP@R and recall@k against a hand-written brute-force loop on the same features."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import OptionError
from benchmark.protocols.retrieval import RETRIEVAL_DEFAULTS, evaluate_retrieval, retrieve, validate_retrieval
from benchmark.testing import ArrayTask, blobs


def _brute(gallery_x, gallery_y, query_x, query_y, ks=(1, 5), leave_one_out=False):
    """Row by row: stable argsort of -cosine (ties to the smaller gallery index), AP over the top R."""
    g = gallery_x / np.maximum(np.linalg.norm(gallery_x, axis=1, keepdims=True), 1e-12)
    q = query_x / np.maximum(np.linalg.norm(query_x, axis=1, keepdims=True), 1e-12)
    aps, rps, hits = [], [], {k: [] for k in ks}
    for i in range(len(q)):
        sims = g @ q[i]
        order = np.argsort(-sims, kind="stable")
        if leave_one_out:
            order = order[order != i]
        rel = gallery_y[order] == query_y[i]
        r = int(rel.sum())
        if r == 0:
            continue
        ap = sum(rel[:j + 1].sum() / (j + 1) for j in range(r) if rel[j]) / r
        aps.append(ap)
        rps.append(rel[:r].sum() / r)
        for k in ks:
            hits[k].append(bool(rel[:k].any()))
    return float(np.mean(aps)), {k: float(np.mean(v)) for k, v in hits.items()}, len(aps), float(np.mean(rps))


def _ties(n, seed):
    """Entries +-1 in 4 dimensions: norms are exactly 2, cosines exact multiples of 1/4, so many exact ties."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=(n, 4)).astype(np.float32)
    return x, rng.integers(0, 3, n)


@pytest.mark.parametrize("chunk_rows", [7, None])
def test_matches_brute_force_on_continuous_features(chunk_rows):
    gx, gy = blobs(40, 5, 8, seed=1, spread=3.0)
    qx, qy = blobs(12, 5, 8, seed=2, spread=3.0)
    res = retrieve(gx, gy, qx, qy, ks=[1, 5], chunk_rows=chunk_rows)
    m, rec, n, rp = _brute(gx, gy, qx, qy)
    assert res.map_at_r() == pytest.approx(m, abs=1e-12)
    assert res.recall(1) == pytest.approx(rec[1]) and res.recall(5) == pytest.approx(rec[5])
    assert res.scored.sum() == n and 0.0 < m < 1.0 and np.mean(res.r_precision) == pytest.approx(rp)


@pytest.mark.parametrize("leave_one_out", [False, True])
def test_exact_ties_follow_the_gallery_order_with_chunks_smaller_than_the_data(leave_one_out):
    gx, gy = _ties(60, 3)
    qx, qy = (gx, gy) if leave_one_out else _ties(25, 4)
    res = retrieve(gx, gy, qx, qy, ks=[1, 5], leave_one_out=leave_one_out, chunk_rows=4)
    m, rec, _, rp = _brute(gx, gy, qx, qy, leave_one_out=leave_one_out)
    assert res.chunk_rows == 4 and np.mean(res.r_precision) == pytest.approx(rp)
    assert res.map_at_r() == pytest.approx(m, abs=1e-12)
    assert res.recall(1) == pytest.approx(rec[1]) and res.recall(5) == pytest.approx(rec[5])


def test_hand_computed_ap_at_r():
    # query along x; gallery ranked: [rel, irr, rel, irr]; R = 2 -> AP@R = (1/1 + 0) / 2 = 0.5
    g = np.array([[1, 0.0], [0.9, 0.1], [0.8, 0.6], [0, 1]], np.float32)
    gy = np.array([0, 1, 0, 1])
    res = retrieve(g, gy, np.array([[1, 0]], np.float32), np.array([0]), ks=[1, 2])
    assert res.ap_at_r.tolist() == [0.5] and res.r.tolist() == [2] and res.r_precision.tolist() == [0.5]
    assert res.hits[1].tolist() == [True]
    # a perfect ranking scores 1; a query whose class is absent from the gallery is left out
    res = retrieve(g, gy, np.array([[0, 1], [1, 1]], np.float32), np.array([1, 7]), ks=[1])
    assert res.ap_at_r[0] == 0.5 and np.isnan(res.ap_at_r[1]) and res.scored.tolist() == [True, False]


def test_evaluate_reports_metrics_and_leave_one_out():
    tr, te = blobs(30, 4, 6, seed=0), blobs(10, 4, 6, seed=5)
    out = evaluate_retrieval(ArrayTask({"train": tr, "test": te}))
    m, rec, n, _ = _brute(*tr, *te)
    assert out.predictions is None
    assert out.metrics["map@r"] == pytest.approx(m) and out.metrics["recall@5"] == pytest.approx(rec[5])
    lo, hi = out.metrics["map@r_ci95"]
    assert lo <= m <= hi and out.metrics["n_queries"] == n == 40 and out.metrics["gallery_size"] == 120
    loo = evaluate_retrieval(ArrayTask({"train": tr, "test": te}), gallery="test")
    assert loo.metrics["map@r"] == pytest.approx(_brute(*te, *te, leave_one_out=True)[0])
    assert loo.metrics["gallery_size"] == 39 and loo.chosen["leave_one_out"] is True


@pytest.mark.parametrize(("options", "message"), [
    ({"gallery": "val"}, "protocol 'retrieval': option gallery must be one of train, test"),
    ({"ks": [1, 0]}, "protocol 'retrieval': option ks"),
    ({"precision": "fp16"}, "protocol 'retrieval': option precision"),
])
def test_validator_rejects_bad_options(options, message):
    validate_retrieval(RETRIEVAL_DEFAULTS)
    with pytest.raises(OptionError, match=message):
        validate_retrieval(options)


@pytest.mark.gpu
def test_cuda_matches_the_brute_force_loop_with_ties():
    gx, gy = _ties(200, 5)
    qx, qy = _ties(50, 6)
    res = retrieve(gx, gy, qx, qy, ks=[1, 5], device="cuda", chunk_rows=16)
    m, rec, _, _ = _brute(gx, gy, qx, qy)
    assert res.map_at_r() == pytest.approx(m, abs=1e-12) and res.recall(5) == pytest.approx(rec[5])
