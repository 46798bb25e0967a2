"""The logistic-regression kernel: multinomial logistic regression on frozen features by full-batch L-BFGS in
torch, and the C sweep. Shared by the linear, fewshot, labeleff and cluster protocols.

The objective is scikit-learn's ``LogisticRegression(penalty="l2")`` exactly::

    sum_i CE(W x_i + b, y_i) + 1 / (2 C) * ||W||_F^2        (bias unpenalised)

It is minimised in its mean-scaled form (divided by n, the same minimiser, as scikit-learn's lbfgs does too) by
our own L-BFGS (:func:`_solve`) in float32 on the given device: a linear model's logits along a search direction
are affine in the step, so the line search costs no matrix product and every iteration exactly two. Same
stopping rule as scikit-learn (max |gradient| <= tol), hence the same solution within its tolerance.

Features are standardised by default (``standardize=True``): per-dimension mean and standard deviation of the
data the final model is fitted on (train, plus val), never of test. This makes one grid of C fit encoders whose
feature scales differ by orders of magnitude, and conditions L-BFGS well. Only classes present in the fit data
get a row of W, as in scikit-learn.

C is chosen by :func:`sweep_C`: fit on the train part for each C of a log-spaced grid, in increasing order, each
fit warm-started from the previous solution, optionally stopping once validation accuracy has fallen for
``patience`` Cs in a row; pick the best validation accuracy (ties to the smaller C); refit on train+val at that C
(warm-started). The test set is never seen before the final prediction.

Speed notes (measured on 2 AMD EPYC cores, 20,000 x 768 x 100 classes, see tests/benchmarks): scikit-learn keeps
float32 input in float32, so it does not pay float64 matmuls; its cost is ~10 loss+gradient passes per C (two
products each). Ours needs ~8 iterations (two products each, line search free). Two ideas measured and dropped:
carrying the L-BFGS memory from one C to the next (rebased for the new penalty, which is exact) saved no
iterations in total; a looser tolerance (1e-3) during selection moved validation accuracy by 2 points at C=0.01,
enough to change the choice, so selection runs at the full ``tol``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from benchmark import checks
from benchmark.errors import ContractError, DataError
from benchmark.protocols.logreg_passes import Memory, ResidentLogits, StreamedLogits, direction
from benchmark.storage.chunked import RowSet, row_slices

OWNER = "protocol 'linear'"
DEFAULT_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Below this many multiply-adds per pass (n * d * classes) a CPU fit runs single-threaded: L-BFGS on a tiny
#: problem is dominated by per-op thread synchronisation, which costs 10x or more on a busy machine.
SMALL_PROBLEM = 1 << 22


@contextmanager
def cpu_threads_for(x: torch.Tensor, n_classes: int) -> Iterator[None]:
    small = x.device.type == "cpu" and x.shape[0] * x.shape[1] * n_classes < SMALL_PROBLEM
    before = torch.get_num_threads()
    if small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


@dataclass
class LogReg:
    """A fitted model: ``scores = ((x - mean) / scale) @ weight.T + bias`` over ``classes``."""

    weight: np.ndarray
    bias: np.ndarray
    classes: np.ndarray
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    n_iter: int = 0

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        return x if self.mean is None else (x - self.mean) / self.scale

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return self.transform(x) @ self.weight.T + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes[np.argmax(self.decision_function(x), axis=1)]


def standardizer(x: np.ndarray | RowSet) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per feature; constant features get scale 1 (as scikit-learn's StandardScaler). Accumulated in
    float64 over row chunks (:meth:`~benchmark.storage.chunked.RowSet.mean_std`): no float64 copy of ``x``."""
    mean, std = (x if isinstance(x, RowSet) else RowSet.of(np.asarray(x))).mean_std()
    std[std < 1e-8 * np.maximum(1.0, np.abs(mean))] = 1.0  # per feature, as StandardScaler decides
    return mean.astype(np.float32), std.astype(np.float32)


def objective(weight: np.ndarray, bias: np.ndarray, x: np.ndarray, y_index: np.ndarray, C: float) -> float:
    """scikit-learn's (unscaled) objective in float64: summed cross-entropy + ||W||^2 / (2C).

    ``y_index`` are row indices into ``weight`` (class positions, not raw labels). Two classes follow
    scikit-learn's binary model, one vector w = W1 - W0 penalised by ||w||^2 / (2C); ``weight`` may be that one
    row (scikit-learn's ``coef_``) or the two rows repbench fits.
    """
    weight, bias = np.asarray(weight, np.float64), np.asarray(bias, np.float64)
    if weight.shape[0] == 1:  # scikit-learn's binary coef_: logits (0, w.x + b)
        weight, bias = np.concatenate([np.zeros_like(weight), weight]), np.concatenate([[0.0], bias])
    logits = np.asarray(x, np.float64) @ weight.T + bias
    logits -= logits.max(axis=1, keepdims=True)
    logz = np.log(np.exp(logits).sum(axis=1))
    ce = float((logz - logits[np.arange(len(y_index)), y_index]).sum())
    penalised = weight[1:] - weight[:1] if weight.shape[0] == 2 else weight
    return ce + float((penalised**2).sum()) / (2.0 * C)


#: Bytes of one chunk of (rows, classes) float32 softmax work in the solver: on CPU small enough that the few
#: per-chunk temporaries stay far below the (n, classes) logits; on a GPU large enough to keep kernels busy.
SOLVER_CHUNK_BYTES = {"cpu": 16 * 2**20, "cuda": 256 * 2**20}


def solver_chunk_rows(n: int, n_classes: int, device: torch.device) -> int:
    """Rows per chunk of the solver's softmax work (``n`` when (n, classes) fits in one chunk)."""
    budget = SOLVER_CHUNK_BYTES["cuda" if device.type == "cuda" else "cpu"]
    return max(1, min(n, budget // (4 * max(1, n_classes))))


def solver_logits(x: torch.Tensor, y: torch.Tensor, n_classes: int, reg: float) -> ResidentLogits | StreamedLogits:
    """How the solver holds the logits (see :mod:`benchmark.protocols.logreg_passes`): whole on a GPU (the
    device bound, fit data + 2 x 4 n classes bytes) and wherever (n, classes) fits in one solver chunk; on the
    host otherwise streamed by chunks of rows, so no (n, classes) tensor exists."""
    span = solver_chunk_rows(len(x), n_classes, x.device)
    resident = x.device.type != "cpu" or span >= len(x)
    return (ResidentLogits if resident else StreamedLogits)(x, y, n_classes, reg, span)


def _solve(x: torch.Tensor, y: torch.Tensor, n_classes: int, C: float, theta: torch.Tensor | None,
           max_iter: int, tol: float, history: int = 10) -> tuple[torch.Tensor, int]:
    """L-BFGS on the mean-scaled objective over theta = [W.ravel(), b] (x (n, d), y (n,) class positions, on
    the device; ``theta`` None starts from zero); returns (theta, iterations).

    Why not ``torch.optim.LBFGS`` (or scipy's L-BFGS-B, which scikit-learn drives): both treat the objective as a
    black box, so every line-search trial is a full loss+gradient pass, two (n, d, classes) matrix products.
    For a linear model the logits along a search direction p are affine in the step, Z(t) = Z + t X p, so
    after one product ``X p`` the 1-D function phi(t) and its first two derivatives cost O(n * classes):
    the line search is a safeguarded Newton iteration on the (convex) phi to |phi'(t)| <= 0.1 |phi'(0)|
    (strong Wolfe with c2 = 0.1, nearly exact), and every iteration costs exactly two matrix products
    (``X p`` and the gradient ``(P - Y)^T X``) however many trials it takes, while the logits are held whole;
    streamed (:func:`solver_logits`), three per trial. The softmax of the accepted trial is reused for the
    gradient. Stops when max |gradient| <= tol (scikit-learn's criterion) or the step no longer changes theta.
    """
    n, d = x.shape
    nw = n_classes * d
    reg = 1.0 / (2.0 * C * n)
    theta = torch.zeros(nw + n_classes, dtype=x.dtype, device=x.device) if theta is None else theta.clone()
    mem = Memory()
    passes = solver_logits(x, y, n_classes, reg)
    g = passes.start(theta)
    it = 0
    while it < max_iter and float(g.abs().max()) > tol:
        it += 1
        if it % 25 == 0:  # refresh the incrementally updated float32 logits against rounding drift
            passes.refresh(theta)
        p = direction(g, mem)
        slope0 = float(g @ p)
        if not slope0 < 0:  # memory gone bad (rounding): restart from steepest descent
            mem = Memory()
            p, slope0 = -g, -float(g @ g)
        passes.along(p)
        pw = p[:nw]
        wp, pp = float(theta[:nw] @ pw), float(pw @ pw)
        step = 1.0 if mem.s else min(1.0, 1.0 / float(g.abs().sum()))
        lo, hi = 0.0, float("inf")
        tried = False
        for _ in range(30):
            data1, data2 = passes.slopes(step)
            d1 = data1 + 2.0 * reg * (wp + step * pp)
            if abs(d1) <= 0.1 * abs(slope0):
                tried = True
                break
            d2 = data2 + 2.0 * reg * pp
            lo, hi = (step, hi) if d1 < 0 else (lo, step)
            new = step - d1 / d2 if d2 > 0 else float("nan")
            step = new if lo < new < hi else ((lo + hi) / 2 if hi < float("inf") else 2.0 * step)
        # (no trial met the curvature condition: the last, bracketed, step is taken anyway)
        s = p.mul_(step)
        if float(s.abs().max()) <= 1e-12 * max(1.0, float(theta.abs().max())):
            break
        theta = theta + s
        g_new = passes.accept(step, theta, tried)
        y_pair = g_new - g
        if float(s @ y_pair) > 1e-10 * float(s @ s):
            mem.s.append(s)
            mem.y.append(y_pair)
            if len(mem.s) > history:
                del mem.s[0], mem.y[0]
        g = g_new
    return theta, it


def fit_logreg(x: np.ndarray | RowSet, y: np.ndarray, C: float, *, standardize: bool = True, max_iter: int = 1000,
               tol: float = 1e-4, device: str = "cpu", init: LogReg | None = None,
               stats: tuple[np.ndarray, np.ndarray] | None = None) -> LogReg:
    """Fit one model at a fixed C. ``stats`` = (mean, scale) to standardise with (default: those of ``x``).
    ``x`` may be a :class:`~benchmark.storage.chunked.RowSet` (rows of several arrays, indexed without copies).

    Stops when the max-abs gradient of the mean-scaled objective is <= ``tol`` (scikit-learn's lbfgs uses the
    same criterion, scipy's ``pgtol``, with the same default 1e-4) or after ``max_iter`` L-BFGS iterations;
    ``init`` warm-starts from a model over the same classes. Raises ContractError for non-finite or misshapen
    ``x``, OptionError for a C that is not > 0.
    """
    rows = _checked_rows("fit", x, y)
    checks.need_number(OWNER, "C", C, gt=0)
    classes, y_index = np.unique(np.asarray(y, np.int64), return_inverse=True)
    mean = scale = None
    if standardize:
        mean, scale = stats if stats is not None else standardizer(rows)
    x = _fit_matrix(rows, mean, scale)
    dev = torch.device(device)
    start = None
    if init is not None:
        if not np.array_equal(init.classes, classes):
            raise ValueError("linear: warm start from a model over different classes")
        start = torch.from_numpy(np.concatenate([init.weight.ravel(), init.bias]).astype(np.float32)).to(dev)
    x_t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(dev)
    d = x.shape[1]
    if dev.type != "cpu":
        del x  # the device holds the fit data: the host copy goes
    # Two classes: scikit-learn fits one vector w = W1 - W0 with ||w||^2 / (2C). The two-row softmax reaches it at
    # W0 = -W1 = -w/2, where (||W0||^2 + ||W1||^2) / (2C') = ||w||^2 / (4C'), so C' = C / 2 is the same problem.
    c_solve = C / 2.0 if len(classes) == 2 else C
    with cpu_threads_for(x_t, len(classes)):
        theta, n_iter = _solve(x_t, torch.from_numpy(y_index).to(dev), len(classes), c_solve, start, max_iter, tol)
    return _model(theta, classes, d, mean, scale, n_iter)


def _checked_rows(split: str, x: np.ndarray | RowSet, y: np.ndarray | None, width: int | None = None) -> RowSet:
    """``x`` as a RowSet, every array behind it checked (:func:`~benchmark.checks.check_features`)."""
    if not isinstance(x, RowSet):
        checks.check_features("linear", split, x, y, width=width)
        return RowSet.of(np.asarray(x))
    seen: set[int] = set()
    for part, _ in x.parts:
        if id(part) not in seen:
            seen.add(id(part))
            checks.check_features("linear", split, part, width=width)
    if y is not None and np.shape(y) != (len(x),):
        raise ContractError(f"protocol 'linear': {split} features: {len(x)} rows but labels of shape "
                            f"{np.shape(y)}; {checks.FEATURES_FIX}")
    return x


def _fit_matrix(rows: RowSet, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    """The float32 C-contiguous matrix the solver reads: the (standardised) rows, the one copy made of them
    (none when they already are one such array and are not standardised)."""
    if mean is None and len(rows.parts) == 1 and rows.parts[0][1] is None:
        only = rows.parts[0][0]
        if only.dtype == np.float32 and only.flags.c_contiguous and only.flags.writeable:
            return only  # torch.from_numpy shares it (a read-only memory map is copied: torch wants writable)
    return rows.materialize(mean, scale)


def _model(theta: torch.Tensor, classes: np.ndarray, d: int, mean: np.ndarray | None, scale: np.ndarray | None,
           n_iter: int) -> LogReg:
    flat = theta.cpu().numpy()
    k = len(classes)
    return LogReg(flat[: k * d].reshape(k, d).copy(), flat[k * d:].copy(), classes, mean, scale, n_iter)


@dataclass
class Sweep:
    """The outcome of :func:`sweep_C`: the chosen C, validation accuracy per evaluated C (in sweep order; Cs
    skipped by early stopping are absent), L-BFGS iterations per C, and the model refit at the chosen C."""

    C: float
    val_top1: dict[float, float]
    model: LogReg
    iters: dict[float, int] = field(default_factory=dict)

    @property
    def evaluated(self) -> list[float]:
        return list(self.val_top1)


def sweep_C(train_x: np.ndarray | RowSet, train_y: np.ndarray, val_x: np.ndarray | RowSet, val_y: np.ndarray,
            Cs: Sequence[float] = DEFAULT_CS, *, standardize: bool = True, max_iter: int = 1000,
            tol: float = 1e-4, patience: int = 0, device: str = "cpu") -> Sweep:
    """Choose C on (val_x, val_y) over ``Cs``, then refit on train+val at that C.

    Cs are visited in increasing order (strong to weak regularisation), each fit warm-started from the previous
    solution. ``patience=p > 0`` stops the sweep after p consecutive Cs whose validation accuracy is strictly
    below the best so far: past the peak, weaker regularisation only costs iterations (``Sweep.val_top1`` then
    lists the Cs actually evaluated); 0 sweeps every C. Every fit, selection and refit, runs to ``tol``.
    Standardisation statistics come from train+val. Ties in validation accuracy go to the smaller C.
    ``train_x`` and ``val_x`` may be :class:`~benchmark.storage.chunked.RowSet` s: train+val is then built once,
    standardised chunk by chunk, as the one copy of the fit data.
    """
    checks.need_number_list(OWNER, "Cs", list(Cs))
    checks.need_int(OWNER, "patience", patience, 0)
    train = _checked_rows("train", train_x, train_y)
    val = _checked_rows("val", val_x, val_y, width=train.width)
    Cs = sorted({float(c) for c in Cs})
    fit_rows = RowSet(train.parts + val.parts)
    all_y = np.concatenate([train_y, val_y]).astype(np.int64, copy=False)
    classes = np.unique(all_y)
    stats = standardizer(fit_rows) if standardize else None
    x_fit = _fit_matrix(fit_rows, *(stats if stats is not None else (None, None)))
    dev = torch.device(device)
    x_t = torch.from_numpy(x_fit).to(dev)
    y_t = torch.from_numpy(np.searchsorted(classes, all_y)).to(dev)
    n_train, k, d = len(train), len(classes), x_fit.shape[1]
    if dev.type != "cpu":
        del x_fit  # the device holds the fit data: the host copy goes
    scores: dict[float, float] = {}
    iters: dict[float, int] = {}
    params: dict[float, torch.Tensor] = {}
    theta, worse = None, 0
    with cpu_threads_for(x_t, k):
        for C in Cs:
            theta, iters[C] = _solve(x_t[:n_train], y_t[:n_train], k, C, theta, max_iter, tol)
            w, b = theta[: k * d].view(k, d), theta[k * d:]
            span = solver_chunk_rows(len(val), k, dev)  # the val logits by chunks of rows
            pred = torch.cat([torch.addmm(b, x_t[n_train:][sl], w.T).argmax(dim=1)
                              for sl in row_slices(len(val), span)]) if len(val) else y_t[:0]
            scores[C] = float((pred == y_t[n_train:]).float().mean()) if len(val_y) else float("nan")
            params[C] = theta
            best = max(scores, key=lambda c: (scores[c], -c))
            worse = worse + 1 if scores[C] < scores[best] else 0
            if patience and worse >= int(patience):
                break
        best = max(scores, key=lambda c: (scores[c], -c))
        theta, n_iter = _solve(x_t, y_t, k, best, params[best], max_iter, tol)
    mean, scale = stats if stats is not None else (None, None)
    return Sweep(best, scores, _model(theta, classes, d, mean, scale, n_iter), iters)


def carve_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Indices (train, val, how) of a seeded validation split of ``labels``: stratified when every class has at
    least two samples, otherwise a plain seeded random split (``how`` says which)."""
    checks.need_fraction(OWNER, "val_fraction", fraction)
    n = len(labels)
    n_val = int(np.ceil(fraction * n))
    if n < 2 or n_val >= n:
        raise DataError(f"{OWNER}: cannot carve a validation split from {n} train samples; pass a fixed C")
    counts = np.bincount(labels - labels.min())
    if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() and n - n_val >= (counts > 0).sum():
        from benchmark.datasets.base import stratified_split

        train, val = stratified_split(labels, fraction, seed)
        return train, val, "stratified"
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val]), "random"
