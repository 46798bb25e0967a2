"""Clustering of frozen test features by k-means, k = number of classes, scored against the labels, pure maths.

k-means is our own (torch, runs on the evaluation device; assignments computed in chunks of rows so the
``N x k`` distance matrix stays bounded): greedy k-means++ seeding (as scikit-learn: ``2 + int(ln k)`` candidate
centres per step, the one lowering the potential most is kept) then Lloyd iterations until the summed squared
centre shift is <= ``tol`` times the mean per-feature variance (scikit-learn's rule) or ``max_iter``; the final
labels are the assignment to the final centres. An empty cluster is re-seeded with the point farthest from its
centre. Given the same initial centres it gives scikit-learn's ``KMeans(algorithm="lloyd")`` partition (tested).

Each of ``seeds`` runs (seed ``task.seed * 1000 + i``) is one k-means++ + Lloyd run (scikit-learn's
``n_init="auto"`` is also one run for k-means++), scored with scikit-learn's metrics:

* ``nmi``: ``normalized_mutual_info_score`` (arithmetic mean normalisation, scikit-learn's default);
* ``ari``: ``adjusted_rand_score``;
* ``v_measure``: ``v_measure_score`` (beta = 1), the score MTEB's clustering tasks report. It is mathematically
  the same number as NMI with the arithmetic mean (Becker 2011; scikit-learn documents it), so the two columns
  agree to rounding; both are kept so records read the same as each field's papers.

The record gives the mean over seeds (``nmi``, ...), the standard deviation (``nmi_std``), a Student-t 95%
interval of the mean (``nmi_ci95``) and the per-seed values (``nmi_runs``). The primary metric is ``nmi``: it is
the clustering score vision papers report (DeepCluster, SCAN, ...), equals MTEB's V-measure, is bounded in
[0, 1] (so the leaderboard's percentages read right; ARI can be negative) and does not depend on matching
clusters to classes.

Features are L2-normalised first by default (``normalize=true``): repbench compares features by cosine
everywhere (kNN, retrieval), and without it a few large-norm samples or dimensions dominate the Euclidean
k-means objective. ``normalize=false`` clusters the raw features as MTEB does. Facts about MTEB (v1 and its
"fast" variant, read for comparison only): it clusters the raw embeddings with scikit-learn's
``MiniBatchKMeans`` (batch 500, or 512 on 10 bootstrap samples of 2,048 documents), k = number of labels, and
reports ``v_measure_score``; repbench runs full-batch Lloyd on the whole test split instead, so its numbers
are close to, not identical with, MTEB's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmark import checks
from benchmark.errors import DataError
from benchmark.protocols.logreg import cpu_threads_for
from benchmark.protocols.metrics import mean_ci
from benchmark.protocols.neighbors import l2_normalize
from benchmark.specs import EvalTask, ProtocolOutput, defaults_of

OWNER = "protocol 'cluster'"
METRICS: tuple[str, ...] = ("nmi", "ari", "v_measure")
#: Bytes of distances one chunk of rows may occupy in the assignment step.
CHUNK_BYTES = 64 * 2**20


@dataclass
class KMeansResult:
    """``labels`` (n,) int64 cluster of each row, ``centers`` (k, d), ``inertia`` (summed squared distance of
    each row to its centre), ``n_iter`` Lloyd iterations, ``init`` (k, d) the k-means++ centres it started from."""

    labels: np.ndarray
    centers: np.ndarray
    inertia: float
    n_iter: int
    init: np.ndarray


def _assign(x: torch.Tensor, sq: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(nearest centre, squared distance to it) of each row, in chunks of rows."""
    rows = max(1, CHUNK_BYTES // (4 * max(1, len(centers))))
    labels, dists = [], []
    c_sq = (centers * centers).sum(1)
    for start in range(0, len(x), rows):
        d = torch.addmm(c_sq, x[start:start + rows], centers.T, alpha=-2.0).add_(sq[start:start + rows, None])
        best = d.min(dim=1)
        labels.append(best.indices)
        dists.append(best.values.clamp_(min=0))
    return torch.cat(labels), torch.cat(dists)


def _sq_dist_to(x: torch.Tensor, sq: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """(n, m) squared distances of every row to each of the m points ``c``."""
    return (sq[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]).clamp_(min=0)


def kmeans_plusplus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """Greedy k-means++ (Arthur & Vassilvitskii 2007; greedy trials as scikit-learn): (k, d) initial centres.
    Random draws come from ``gen`` (a CPU generator), so a seed gives the same centres on every device."""
    n = len(x)
    sq = (x * x).sum(1)
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=gen))
    idx = [first]
    closest = _sq_dist_to(x, sq, x[first:first + 1])[:, 0].double()
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # every point sits on a centre already: any new point is as good
            cand = torch.randint(n, (trials,), generator=gen)
        else:
            cand = torch.multinomial((closest / total).cpu(), trials, replacement=True, generator=gen)
        cand = cand.to(x.device)
        d = torch.minimum(closest[:, None], _sq_dist_to(x, sq, x[cand]).double())
        best = int(d.sum(0).argmin())
        idx.append(int(cand[best]))
        closest = d[:, best]
    return x[torch.tensor(idx, device=x.device)].clone()


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, max_iter: int = 300, tol: float = 1e-4,
           device: str = "cpu", init: np.ndarray | None = None) -> KMeansResult:
    """k-means of the rows of ``x`` into ``k`` clusters (module docstring); ``init`` replaces k-means++."""
    x_t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(torch.device(device))
    n = len(x_t)
    if not 1 <= k <= n:
        raise DataError(f"{OWNER}: cannot make {k} clusters from {n} samples; the test split needs at least as "
                        "many samples as there are classes")
    # small problems run single-threaded on CPU, as the linear probe's fits (thread sync dominates: ~10x here)
    with cpu_threads_for(x_t, k):
        return _lloyd(x_t, k, seed, max_iter, tol, init)


def _lloyd(x_t: torch.Tensor, k: int, seed: int, max_iter: int, tol: float, init: np.ndarray | None
           ) -> KMeansResult:
    """k-means++ (or ``init``) then Lloyd iterations on ``x_t`` (on its device); see :func:`kmeans`."""
    sq = (x_t * x_t).sum(1)
    gen = torch.Generator().manual_seed(int(seed))
    centers = kmeans_plusplus(x_t, k, gen) if init is None else torch.from_numpy(
        np.asarray(init, np.float32)).to(x_t.device)
    start = centers.cpu().numpy().copy()
    limit = tol * float(x_t.double().var(0, unbiased=False).mean())
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007  (it is the number of iterations run)
        labels, dists = _assign(x_t, sq, centers)
        new = torch.zeros_like(centers).index_add_(0, labels, x_t)
        counts = torch.bincount(labels, minlength=k)
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):  # re-seed each empty cluster with one of the points farthest from their centres
            far = torch.topk(dists, len(empty)).indices
            new[empty], counts[empty] = x_t[far], 1
        new /= counts[:, None].to(new.dtype)
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if shift <= limit:
            break
    labels, dists = _assign(x_t, sq, centers)
    return KMeansResult(labels.cpu().numpy().astype(np.int64), centers.cpu().numpy(), float(dists.double().sum()),
                        it, start)


def score_clustering(labels: np.ndarray, clusters: np.ndarray) -> dict[str, float]:
    """NMI, ARI and V-measure of a partition against the labels (scikit-learn's metrics)."""
    from sklearn import metrics

    return {"nmi": float(metrics.normalized_mutual_info_score(labels, clusters)),
            "ari": float(metrics.adjusted_rand_score(labels, clusters)),
            "v_measure": float(metrics.v_measure_score(labels, clusters))}



def evaluate_cluster(task: EvalTask, seeds: int = 5, normalize: bool = True, max_iter: int = 300,
                     tol: float = 1e-4) -> ProtocolOutput:
    """k-means on the test features, k = the number of classes present in test, ``seeds`` runs.

    Metrics per name in ``nmi``, ``ari``, ``v_measure``: the mean over seeds, ``<name>_std``, ``<name>_ci95``
    and ``<name>_runs``; plus ``inertia`` (mean) and ``n_test``. ``chosen``: k, the seeds used and Lloyd
    iterations per run. Train features are never read. Returns no predictions (a cluster id is not a class).
    """
    validate_cluster({"seeds": seeds, "normalize": normalize, "max_iter": max_iter, "tol": tol})
    test_x, test_y = task.features("test")
    checks.check_features("cluster", "test", test_x, test_y)
    k = int(len(np.unique(test_y)))
    x = test_x
    if normalize:
        x = l2_normalize(torch.from_numpy(np.asarray(test_x, np.float32))).numpy()
    runs: dict[str, list[float]] = {m: [] for m in METRICS}
    inertia, iters, used = [], [], []
    for i in range(int(seeds)):
        seed = task.seed * 1000 + i
        res = kmeans(x, k, seed=seed, max_iter=int(max_iter), tol=float(tol), device=task.device)
        for name, value in score_clustering(test_y, res.labels).items():
            runs[name].append(value)
        inertia.append(res.inertia)
        iters.append(res.n_iter)
        used.append(seed)
    metrics: dict[str, Any] = {}
    for name, values in runs.items():
        mean, std, ci = mean_ci(values)
        metrics.update({name: mean, f"{name}_std": std, f"{name}_ci95": ci, f"{name}_runs": values})
    metrics.update(inertia=float(np.mean(inertia)), n_test=int(len(test_y)))
    chosen = {"k": k, "seeds": used, "n_iter": iters, "normalized": bool(normalize)}
    return ProtocolOutput(None, None, metrics, chosen)


#: The options and their defaults, read from the signature of :func:`evaluate_cluster` (the one source).
CLUSTER_DEFAULTS: dict[str, Any] = defaults_of(evaluate_cluster)


def validate_cluster(options: Mapping[str, Any]) -> None:
    """The cluster spec's validator: OptionError for values :func:`evaluate_cluster` cannot use."""
    o = {**CLUSTER_DEFAULTS, **options}
    checks.need_int(OWNER, "seeds", o["seeds"], 1)
    checks.need_bool(OWNER, "normalize", o["normalize"])
    checks.need_int(OWNER, "max_iter", o["max_iter"], 1)
    checks.need_number(OWNER, "tol", o["tol"], ge=0)
