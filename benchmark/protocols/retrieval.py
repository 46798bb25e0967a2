"""Class-level retrieval on frozen features: each test sample queries a gallery by cosine similarity, pure maths.

A gallery item is *relevant* to a query when it has the query's class. ``gallery="train"`` (default) searches the
train split; ``gallery="test"`` searches the test split itself, leaving the query out (leave-one-out).

Metrics, per query, then averaged over queries:

* **mAP@R** (Musgrave, Belongie & Lim, "A Metric Learning Reality Check", ECCV 2020): with R the number of
  relevant items in the gallery for this query, ``AP@R = (1 / R) * sum_{i=1..R} P(i) * rel(i)``, where rel(i)
  is 1 when the i-th retrieved item is relevant and P(i) the precision of the top i. It is 1 only when the R
  nearest items are exactly the relevant ones.
* **R-precision** (reported beside it, as Musgrave et al. do): the fraction of relevant items among the top R.
* **recall@k** in the metric-learning sense (Song et al. 2016; the "Recall@K" of image-retrieval papers, not
  the IR ratio of relevant items found): 1 when at least one of the top-k retrieved items is relevant, else 0.
  recall@1 is precision@1 (the 1-NN accuracy).

Queries whose class has no item in the gallery (R = 0) have no AP@R: they are left out of every mean and counted
in ``n_queries_without_relevant``.

Ranking and ties: items are ranked by similarity, ties broken by the smaller gallery index, exactly (a query
whose top list ends inside a run of equal similarities is re-ranked with a full stable sort of its row), so the
result is deterministic and equals a brute-force stable ``argsort``. Queries are processed in chunks by
:class:`benchmark.protocols.neighbors.ChunkedTopk`, the same loop kNN uses, so memory stays bounded: per chunk only the
top ``max(R_max, max(ks))`` columns are kept, R_max being the largest class in the gallery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from benchmark import checks
from benchmark.errors import DataError
from benchmark.protocols.metrics import bootstrap_ci
from benchmark.protocols.neighbors import KNN_PRECISIONS, TopkChunk, chunked_topk
from benchmark.specs import EvalTask, ProtocolOutput, defaults_of

OWNER = "protocol 'retrieval'"
GALLERIES: tuple[str, ...] = ("train", "test")


@dataclass
class RetrievalResult:
    """Per query: ``ap_at_r`` and ``r_precision`` (NaN where R = 0), ``r`` (relevant items in the gallery) and
    ``hits[k]`` (bool, at least one relevant item in the top k)."""

    ap_at_r: np.ndarray
    r: np.ndarray
    hits: dict[int, np.ndarray]
    chunk_rows: int = 0
    r_precision: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def scored(self) -> np.ndarray:
        """Mask of the queries that have at least one relevant gallery item."""
        return self.r > 0

    def map_at_r(self) -> float:
        return float(np.mean(self.ap_at_r[self.scored])) if self.scored.any() else float("nan")

    def recall(self, k: int) -> float:
        return float(np.mean(self.hits[k][self.scored])) if self.scored.any() else float("nan")


def _exact_order(chunk: TopkChunk) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, indices) of the chunk's top list ordered by (-similarity, gallery index), with the membership
    of the last places made exact: rows where the top list ends inside a run of ties are re-ranked in full."""
    vals, idx = chunk.values, chunk.indices
    by_index = torch.argsort(idx, dim=1)
    vals, idx = vals.gather(1, by_index), idx.gather(1, by_index)
    by_value = torch.sort(vals, dim=1, descending=True, stable=True).indices
    vals, idx = vals.gather(1, by_value), idx.gather(1, by_value)
    last = vals[:, -1:]
    n = chunk.sims.shape[0]
    # ties counted over blocks of rows: a whole-chunk (sims == last).sum(1) makes an int64 (rows, gallery)
    # temporary, twice the chunk's own score buffer; a block's stays within a quarter of it
    step = max(1, n // 16)
    ties = torch.cat([(chunk.sims[a:a + step] == last[a:a + step]).sum(1) for a in range(0, n, step)]) if n \
        else last.new_zeros(0, dtype=torch.int64)
    rows = torch.nonzero(ties > (vals == last).sum(1)).flatten()
    k = vals.shape[1]
    # batched stable sorts of those rows (binary or bf16 features make many), as many rows at a time as keep
    # the copy, the sorted values and their int64 indices within the chunk's score buffer
    per = max(1, (n * chunk.sims.element_size()) // (8 * (2 * chunk.sims.element_size() + 8)))
    for a in range(0, len(rows), per):
        some = rows[a:a + per]
        full = torch.sort(chunk.sims[some], dim=1, descending=True, stable=True)
        vals[some], idx[some] = full.values[:, :k], full.indices[:, :k]
        del full
    return vals, idx


def retrieve(gallery_x: np.ndarray, gallery_y: np.ndarray, query_x: np.ndarray, query_y: np.ndarray, *,
             ks: Sequence[int] = (1, 5), leave_one_out: bool = False, device: str = "cpu",
             precision: str = "fp32", chunk_rows: int | None = None) -> RetrievalResult:
    """Rank ``gallery_x`` for every row of ``query_x`` by cosine similarity and score it (see the module).

    ``leave_one_out=True``: the queries are the gallery (same rows and order) and each query's own row is
    excluded. ``chunk_rows`` overrides the number of queries per chunk. Raises ContractError for malformed or
    non-finite features, OptionError for bad options, DataError for an empty gallery.
    """
    checks.check_splits("retrieval", (gallery_x, gallery_y), ("query", query_x, query_y))
    checks.need_int_list(OWNER, "ks", list(ks), allow_empty=False, allow_scalar=False)
    checks.need_choice(OWNER, "precision", precision, KNN_PRECISIONS)
    gallery_y, query_y = np.asarray(gallery_y, np.int64), np.asarray(query_y, np.int64)
    n_gallery = len(gallery_y) - int(leave_one_out)
    if n_gallery < 1:
        raise DataError(f"{OWNER}: the gallery is empty; retrieval needs at least one gallery item per query")
    n_labels = int(max(gallery_y.max(initial=0), query_y.max(initial=0))) + 1
    r = np.bincount(gallery_y, minlength=n_labels)[query_y] - int(leave_one_out)
    ks = sorted({int(k) for k in ks})
    depth = min(n_gallery, max(int(r.max(initial=0)), ks[-1]))
    dev = torch.device(device)
    labels = torch.from_numpy(gallery_y).to(dev)
    r_t = torch.from_numpy(r).to(dev)
    ranks = torch.arange(1, depth + 1, device=dev)
    ap_parts: list[np.ndarray] = []
    rp_parts: list[np.ndarray] = []
    hit_parts: dict[int, list[np.ndarray]] = {k: [] for k in ks}
    chunks = chunked_topk(gallery_x, query_x, depth, device=device, precision=precision, chunk_rows=chunk_rows,
                          exclude_self=leave_one_out)
    with torch.inference_mode():
        for chunk in chunks:
            _, idx = _exact_order(chunk)
            rows = slice(chunk.start, chunk.start + len(idx))
            query = torch.from_numpy(query_y[rows]).to(dev)
            rel = labels[idx] == query[:, None]
            r_rows = r_t[rows]
            within_r = ranks[None, :] <= r_rows[:, None]
            precision_at = rel.cumsum(1).double() / ranks[None, :]
            ap = (precision_at * (rel & within_r)).sum(1) / r_rows.clamp(min=1)
            ap_parts.append(torch.where(r_rows > 0, ap, torch.nan).cpu().numpy())
            rp = (rel & within_r).sum(1).double() / r_rows.clamp(min=1)
            rp_parts.append(torch.where(r_rows > 0, rp, torch.nan).cpu().numpy())
            for k in ks:
                hit_parts[k].append(rel[:, :k].any(1).cpu().numpy())
    empty = np.zeros(0)
    return RetrievalResult(np.concatenate(ap_parts) if ap_parts else empty, r,
                           {k: np.concatenate(v) if v else empty.astype(bool) for k, v in hit_parts.items()},
                           chunks.chunk_rows, np.concatenate(rp_parts) if rp_parts else empty)


def _mean_ci(values: np.ndarray) -> list[float | None]:
    """95% interval of a mean over queries (normal approximation: hundreds of queries or more)."""
    if len(values) < 2:
        return [None, None]
    half = 1.96 * float(np.std(values, ddof=1)) / np.sqrt(len(values))
    mean = float(np.mean(values))
    return [mean - half, mean + half]


def evaluate_retrieval(task: EvalTask, gallery: str = "train", ks: Sequence[int] = (1, 5),
                       precision: str = "fp32") -> ProtocolOutput:
    """Test queries against the ``gallery`` split (``train``, or ``test`` leave-one-out), cosine similarity.

    Metrics: ``map@r`` (primary) with ``map@r_ci95`` (normal interval of the mean over queries), ``r_precision``,
    ``recall@k`` for
    every k in ``ks`` with a bootstrap ``recall@k_ci95``, ``n_queries`` (scored), ``n_queries_without_relevant``
    and ``gallery_size``. Returns no predictions: the harness records these metrics as they are.
    """
    validate_retrieval({"gallery": gallery, "ks": ks, "precision": precision})
    ks = [int(cast(int, ks))] if checks.is_int(ks) else [int(k) for k in ks]
    test_x, test_y = task.features("test")
    if gallery == "train":
        gallery_x, gallery_y = task.features("train")
    else:
        gallery_x, gallery_y = test_x, test_y
    checks.check_splits("retrieval", (gallery_x, gallery_y), ("test", test_x, test_y))
    res = retrieve(gallery_x, gallery_y, test_x, test_y, ks=ks, leave_one_out=gallery == "test",
                   device=task.device, precision=precision)
    scored = res.scored
    metrics: dict[str, Any] = {"map@r": res.map_at_r(), "map@r_ci95": _mean_ci(res.ap_at_r[scored]),
                               "r_precision": float(np.mean(res.r_precision[scored])) if scored.any() else None}
    for k in sorted(set(ks)):
        metrics[f"recall@{k}"] = res.recall(k)
        metrics[f"recall@{k}_ci95"] = list(bootstrap_ci(res.hits[k][scored], seed=task.seed)) if scored.any() \
            else [None, None]
    metrics.update(n_queries=int(scored.sum()), n_queries_without_relevant=int((~scored).sum()),
                   gallery_size=int(len(gallery_y) - (gallery == "test")), n_test=int(len(test_y)))
    chosen = {"gallery": gallery, "leave_one_out": gallery == "test", "chunk_rows": res.chunk_rows}
    return ProtocolOutput(None, None, metrics, chosen)


#: The options and their defaults, read from the signature of :func:`evaluate_retrieval` (the one source).
RETRIEVAL_DEFAULTS: dict[str, Any] = defaults_of(evaluate_retrieval)


def validate_retrieval(options: Mapping[str, Any]) -> None:
    """The retrieval spec's validator: OptionError for values :func:`evaluate_retrieval` cannot use."""
    o = {**RETRIEVAL_DEFAULTS, **options}
    checks.need_choice(OWNER, "gallery", o["gallery"], GALLERIES)
    checks.need_int_list(OWNER, "ks", o["ks"], allow_empty=False)
    checks.need_choice(OWNER, "precision", o["precision"], KNN_PRECISIONS)
