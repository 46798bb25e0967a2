"""The k-nearest-neighbour kernel (the DINO protocol's maths), shared by the knn, fewshot, labeleff and retrieval
protocols: chunked cosine top-k and voting.

Features are L2-normalised and compared by cosine similarity. The test set is processed in chunks of rows, so
memory stays bounded: no full ``N_test x N_train`` matrix is ever built. One ``top-max(k)`` pass per chunk serves
every requested ``k`` (the neighbours of a smaller ``k`` are a prefix of the sorted top list).

Voting (``weighting``):

* ``"dino"`` (default): each neighbour votes for its label with weight ``exp(sim / T)`` (Caron et al., 2021,
  ``knn_classifier`` in DINO's ``eval_knn.py``; ``k=20``, ``T=0.07``). The class with the largest summed weight
  wins; an exact tie goes to the smaller label.
* ``"uniform"``: plain majority; ties go to the smaller label, which is exactly what scikit-learn's
  ``KNeighborsClassifier(metric="cosine", algorithm="brute")`` returns (its ``predict`` takes the first maximum
  over the sorted ``classes_``), so predictions are identical to it whenever the k-th neighbour is unambiguous.

Speed (CPU, 50,000 x 10,000 x 768): the similarity matmul is ~90% of the time and runs at the BLAS's peak, so
only the rest can shrink: top-k selection by :func:`topk_grouped` (about 3x cheaper than ``torch.topk``), one
reused score buffer, and numpy's OpenBLAS sgemm (``NUMPY_SGEMM``; faiss's BLAS too) instead of torch's MKL one,
~10% faster on the reference AMD EPYC. Voting touches only the (rows, k) top lists.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from benchmark.checks import check_splits, need_choice, need_number
from benchmark.errors import ContractError, DataError, OptionError
from benchmark.storage import chunked

OWNER = "protocol 'knn'"
WEIGHTINGS: tuple[str, ...] = ("dino", "uniform")
KNN_PRECISIONS: tuple[str, ...] = ("fp32", "bf16")
#: Bytes of similarity scores one chunk of test rows may occupy (chunk rows = budget // (4 * n_train)).
DEFAULT_CHUNK_BYTES = {"cpu": 256 * 2**20, "cuda": 1024 * 2**20}
#: Columns per group in :func:`topk_grouped` (8 measured best for k=20..200 over 50,000 train rows on CPU).
GROUP = 8
#: On CPU, compute fp32 similarities with numpy's matmul (OpenBLAS, as faiss uses) rather than torch's (MKL):
#: measured ~10% faster for (1342 x 768) @ (768 x 50,000) on the reference AMD EPYC; set False to compare.
NUMPY_SGEMM = True


@dataclass
class KnnResult:
    """Per-k outputs: ``predictions[k]`` (N_test,) int64 labels; ``topk_classes[k]`` (N_test, m) int64 classes
    ranked by vote (m = ``top_classes``, or None when not requested)."""

    predictions: dict[int, np.ndarray]
    topk_classes: dict[int, np.ndarray] = field(default_factory=dict)
    chunk_rows: int = 0


def _check(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, ks: Sequence[int],
           weighting: str, precision: str, temperature: float) -> None:
    check_splits("knn", (train_x, train_y), ("test", test_x, None))
    if len(train_x) == 0:
        raise DataError("protocol 'knn': the train split is empty")
    if not ks or any(int(k) < 1 for k in ks):
        raise OptionError(f"protocol 'knn': every k must be a positive integer, got {list(ks)}")
    if max(ks) > len(train_x):
        raise OptionError(f"protocol 'knn': k={max(ks)} is larger than the train set ({len(train_x)} samples); "
                          "choose k <= the number of train samples")
    need_choice(OWNER, "weighting", weighting, WEIGHTINGS)
    need_choice(OWNER, "precision", precision, KNN_PRECISIONS)
    if weighting == "dino":
        need_number(OWNER, "temperature", temperature, gt=0)


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm (all-zero rows stay zero)."""
    return torch.nn.functional.normalize(x, p=2.0, dim=1, eps=1e-12)


def topk_grouped(sims: torch.Tensor, k: int, group: int = GROUP) -> tuple[torch.Tensor, torch.Tensor]:
    """``torch.topk(sims, k, dim=1, sorted=True)``, exactly (up to the order of equal values), in two cheap passes.

    Why: on CPU ``torch.topk`` over a 50,000-wide row costs about a tenth of the similarity matmul (it selects
    on a copy of every row). Instead, columns are split into ``n // group`` strided groups (group j = columns
    j, j + n//group, ...), a vectorised elementwise max over the ``group`` slices gives each group's maximum,
    and only the k groups with the largest maxima are searched. They hold every top-k element: an element of
    any other group is exceeded by k group maxima in distinct groups, so it ranks below k. The leftover
    ``n % group`` columns are always searched. Falls back to ``torch.topk`` when there are fewer than ``4 k``
    groups (no saving).
    """
    b, n = sims.shape
    ng = n // group
    if group < 2 or ng < 4 * k:
        return torch.topk(sims, k, dim=1, largest=True, sorted=True)
    gmax = sims[:, : ng * group].view(b, group, ng).amax(dim=1)
    best_groups = torch.topk(gmax, k, dim=1, largest=True, sorted=False).indices
    offsets = torch.arange(0, group * ng, ng, device=sims.device)
    cand = (best_groups[:, None, :] + offsets[None, :, None]).view(b, k * group)
    if ng * group < n:
        cand = torch.cat([cand, torch.arange(ng * group, n, device=sims.device).expand(b, -1)], dim=1)
    vals, pos = torch.topk(torch.gather(sims, 1, cand), k, dim=1, largest=True, sorted=True)
    return vals, torch.gather(cand, 1, pos)


@dataclass
class TopkChunk:
    """One chunk of queries: rows ``start:start + len(values)``; ``values`` / ``indices`` (rows, k) the top-k
    similarities (descending) and gallery indices; ``sims`` (rows, n_gallery) every similarity of the chunk (a
    reused buffer: valid only until the next chunk is produced)."""

    start: int
    values: torch.Tensor
    indices: torch.Tensor
    sims: torch.Tensor


class ChunkedTopk:
    """Iterate the cosine top-k of ``queries`` against ``gallery`` chunk by chunk (:class:`TopkChunk`), never
    building the full ``N_query x N_gallery`` matrix: the one similarity-and-selection loop that kNN and
    retrieval share.

    Both sides are L2-normalised (on CPU in fp32 the gallery is not copied: each chunk's scores are divided by the
    gallery's row norms instead, the same cosine similarities to float32 rounding); ``precision="bf16"`` computes
    similarities in bfloat16. ``chunk_rows`` is the
    number of query rows per chunk (default: one chunk's scores take <= 256 MiB on CPU, 1 GiB on CUDA; the used
    value is :attr:`chunk_rows`). ``exclude_self=True`` means the queries ARE the gallery (same rows, same order):
    each query's own column is set to -inf before selection (leave-one-out). Iterate under
    ``torch.inference_mode()``. ``order`` (a permutation of the gallery's rows) ranks ``gallery[order]`` without
    building it: each chunk's scores are computed against the gallery as it is, then their columns permuted (two
    score buffers, so the default chunk has half the rows).
    """

    def __init__(self, gallery: np.ndarray, queries: np.ndarray, k: int, *, device: str = "cpu",
                 precision: str = "fp32", chunk_rows: int | None = None, exclude_self: bool = False,
                 order: np.ndarray | None = None) -> None:
        self.dev = torch.device(device)
        self.dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        raw = _shared_tensor(np.asarray(gallery, np.float32))  # the caller's float32 rows: no copy
        # CPU fp32: the gallery is used as it is, each chunk's scores divided by the gallery's norms (what
        # l2_normalize divides by): no normalised copy. Otherwise the copy on the device (or in bf16) is normalised
        # in place, block by block, so the device never holds two copies.
        self.norms: torch.Tensor | None = None
        if self.dev.type == "cpu" and self.dtype == torch.float32:
            self.gallery = raw
            self.norms = torch.cat([_norms(raw[sl]) for sl in _blocks(raw)]).view(1, -1) if len(raw) else \
                raw.new_ones(1, 0)
        else:
            self.gallery = raw.to(self.dev) if self.dtype == torch.float32 else \
                torch.empty(raw.shape, dtype=self.dtype, device=self.dev)
            for sl in _blocks(raw):
                self.gallery[sl] = l2_normalize(raw[sl].to(self.dev)).to(self.dtype)
        self.queries = np.asarray(queries, np.float32)
        self.k, self.exclude_self = int(k), exclude_self
        self.order = None if order is None else torch.from_numpy(np.asarray(order, np.int64)).to(self.dev)
        n_gallery = len(self.gallery)
        if chunk_rows is None:
            budget = DEFAULT_CHUNK_BYTES["cuda" if self.dev.type == "cuda" else "cpu"]
            chunk_rows = max(1, budget // (4 * max(1, n_gallery) * (1 if order is None else 2)))
        self.chunk_rows = max(1, min(int(chunk_rows), max(1, len(self.queries))))

    def __iter__(self) -> Iterator[TopkChunk]:
        dev, n_gallery = self.dev, len(self.gallery)
        # one reused score buffer: a fresh multi-hundred-MB allocation per chunk costs page faults each time
        buf = torch.empty(min(self.chunk_rows, len(self.queries)), n_gallery, dtype=self.dtype, device=dev)
        ordered = buf if self.order is None else torch.empty_like(buf)
        host = NUMPY_SGEMM and dev.type == "cpu" and self.dtype == torch.float32
        gallery_np = self.gallery.numpy() if host else None
        for start in range(0, len(self.queries), self.chunk_rows):
            q = l2_normalize(torch.from_numpy(self.queries[start:start + self.chunk_rows]).to(dev)).to(self.dtype)
            if gallery_np is not None:  # CPU fp32: numpy's OpenBLAS sgemm, ~10% faster than torch's MKL one here
                sims = buf[: len(q)]
                np.matmul(q.numpy(), gallery_np.T, out=sims.numpy())
            else:
                sims = torch.mm(q, self.gallery.T, out=buf[: len(q)])
            if self.norms is not None:
                sims.div_(self.norms)
            if self.order is not None:
                sims = torch.index_select(sims, 1, self.order, out=ordered[: len(q)])
            if self.exclude_self:
                rows = torch.arange(len(q), device=dev)
                sims[rows, rows + start] = float("-inf")
            values, indices = (topk_grouped(sims, self.k) if dev.type == "cpu"
                               else torch.topk(sims, self.k, dim=1, largest=True, sorted=True))
            yield TopkChunk(start, values, indices, sims)


def _shared_tensor(x: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy(x)``, sharing its memory; a read-only array (a memory map) too: it is only read."""
    if x.flags.writeable:
        return torch.from_numpy(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the given NumPy array is not writable"
        return torch.from_numpy(x)


def _blocks(x: torch.Tensor) -> Iterator[slice]:
    """Row blocks of about :data:`~benchmark.storage.chunked.CHUNK_BYTES` each."""
    return chunked.row_slices(len(x), chunked.chunk_rows(x.shape[1] * 4))


def _norms(x: torch.Tensor) -> torch.Tensor:
    """Row norms, as :func:`l2_normalize` computes and clamps them."""
    return x.norm(2.0, 1).clamp_min(1e-12)


def chunked_topk(gallery: np.ndarray, queries: np.ndarray, k: int, **options: Any) -> ChunkedTopk:
    """:class:`ChunkedTopk` (``options``: device, precision, chunk_rows, exclude_self, order)."""
    return ChunkedTopk(gallery, queries, k, **options)


def _vote(sims: torch.Tensor, labels: torch.Tensor, k: int, num_classes: int, weighting: str,
          temperature: float) -> torch.Tensor:
    """(B, num_classes) vote totals of the first k (sorted) neighbours. Uniform votes are exact int64 counts."""
    b = sims.shape[0]
    idx = labels[:, :k]
    if weighting == "uniform":
        votes = torch.zeros(b, num_classes, dtype=torch.int64, device=sims.device)
        return votes.scatter_add_(1, idx, torch.ones_like(idx))
    # exp((s - s_max) / T): the same weights up to one factor per row (so the same ranking), but never inf at a
    # small T (exp(1 / 0.005) overflows float32). Summed in float64 so that the order in which CUDA's atomic
    # adds land cannot flip near-equal totals.
    sims_k = sims[:, :k].double()
    weights = torch.exp((sims_k - sims_k[:, :1]) / temperature)
    votes = torch.zeros(b, num_classes, dtype=torch.float64, device=sims.device)
    return votes.scatter_add_(1, idx, weights)


def _rank(votes: torch.Tensor, m: int) -> torch.Tensor:
    """(B, m) classes by descending vote, ties to the smaller label (deterministic on every device)."""
    if m == 1:
        return votes.argmax(dim=1, keepdim=True)  # argmax returns the first maximum
    c = votes.shape[1]
    if votes.dtype == torch.int64:
        key = votes * c + (c - 1 - torch.arange(c, device=votes.device))
        return torch.topk(key, m, dim=1, sorted=True).indices
    # float votes: a stable descending sort keeps equal totals in label order
    return torch.sort(votes, dim=1, descending=True, stable=True).indices[:, :m]


def knn_classify(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, ks: Sequence[int], *,
                 num_classes: int | None = None, weighting: str = "dino", temperature: float = 0.07,
                 device: str = "cpu", precision: str = "fp32", top_classes: int = 0,
                 chunk_rows: int | None = None) -> KnnResult:
    """Classify ``test_x`` by its k nearest ``train_x`` rows (cosine similarity), for every k in ``ks``.

    ``train_y`` are int labels in ``[0, num_classes)``. ``precision="bf16"`` computes similarities in bfloat16
    (faster on GPUs; neighbours can differ from fp32 where similarities are within ~1e-2). ``top_classes=m > 0``
    also returns the m best classes per row (for top-5 accuracy). ``chunk_rows`` overrides the number of test
    rows per chunk (by default sized so one chunk's scores take <= 256 MiB on CPU, 1 GiB on CUDA).
    Raises ContractError for malformed or non-finite features, OptionError for bad options or ``max(ks)``
    larger than the train set.
    """
    train_x = np.asarray(train_x, dtype=np.float32)
    test_x = np.asarray(test_x, dtype=np.float32)
    train_y = np.asarray(train_y, dtype=np.int64)
    ks = sorted({int(k) for k in ks})
    _check(train_x, train_y, test_x, ks, weighting, precision, temperature)
    if num_classes is None:
        num_classes = int(train_y.max()) + 1
    if train_y.min() < 0 or train_y.max() >= num_classes:
        raise ContractError(f"protocol 'knn': train labels must lie in [0, {num_classes}), got "
                            f"[{train_y.min()}, {train_y.max()}]")
    top_classes = min(int(top_classes), num_classes)
    dev = torch.device(device)
    labels = torch.from_numpy(train_y).to(dev)
    max_k = ks[-1]
    preds: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    tops: dict[int, list[torch.Tensor]] = {k: [] for k in ks}
    chunks = chunked_topk(train_x, test_x, max_k, device=device, precision=precision, chunk_rows=chunk_rows)
    with torch.inference_mode():
        for chunk in chunks:
            top_sims = chunk.values.float()
            top_labels = labels[chunk.indices]
            for k in ks:
                votes = _vote(top_sims, top_labels, k, num_classes, weighting, temperature)
                ranked = _rank(votes, max(1, top_classes))
                preds[k].append(ranked[:, 0].cpu())
                if top_classes:
                    tops[k].append(ranked.cpu())
    chunk_rows = chunks.chunk_rows
    out = KnnResult({k: _cat(v) for k, v in preds.items()}, chunk_rows=chunk_rows)
    if top_classes:
        out.topk_classes = {k: _cat(v, top_classes) for k, v in tops.items()}
    return out


def _cat(parts: list[torch.Tensor], width: int = 0) -> np.ndarray:
    if not parts:
        return np.zeros((0, width) if width else (0,), dtype=np.int64)
    return torch.cat(parts).numpy().astype(np.int64)


def topk_accuracy(topk_classes: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of rows whose label is among their ranked classes."""
    if len(labels) == 0:
        return float("nan")
    return float((topk_classes == np.asarray(labels)[:, None]).any(axis=1).mean())
