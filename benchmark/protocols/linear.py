"""Linear probe: multinomial logistic regression on frozen features by full-batch L-BFGS in torch, pure maths.

The objective is scikit-learn's ``LogisticRegression(penalty="l2")`` exactly::

    sum_i CE(W x_i + b, y_i) + 1 / (2 C) * ||W||_F^2        (bias unpenalised)

It is minimised in its mean-scaled form (divided by n, the same minimiser, as scikit-learn's lbfgs does too) with
``torch.optim.LBFGS`` and a strong-Wolfe line search, in float32 on the given device.

Features are standardised by default (``standardize=True``): per-dimension mean and standard deviation of the
data the final model is fitted on (train, plus val), never of test. This makes one grid of C fit encoders whose
feature scales differ by orders of magnitude, and conditions L-BFGS well. Only classes present in the fit data
get a row of W, as in scikit-learn.

C is chosen by :func:`sweep_C`: fit on the train part for each C of a log-spaced grid, in increasing order, each
fit warm-started from the previous solution; pick the best validation accuracy (ties to the smaller C); refit on
train+val at that C (warm-started). The test set is never seen before the final prediction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

DEFAULT_CS: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: Below this many multiply-adds per pass (n * d * classes) a CPU fit runs single-threaded: L-BFGS on a tiny
#: problem is dominated by per-op thread synchronisation, which costs 10x or more on a busy machine.
SMALL_PROBLEM = 1 << 22


@contextmanager
def _cpu_threads_for(x: torch.Tensor, n_classes: int) -> Iterator[None]:
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


def standardizer(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) per feature; constant features get scale 1 (as scikit-learn's StandardScaler)."""
    x = np.asarray(x, dtype=np.float64)
    mean, std = x.mean(axis=0), x.std(axis=0)
    std[std < 1e-8 * max(1.0, float(np.abs(mean).max(initial=0.0)))] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def objective(weight: np.ndarray, bias: np.ndarray, x: np.ndarray, y_index: np.ndarray, C: float) -> float:
    """scikit-learn's (unscaled) objective in float64: summed cross-entropy + ||W||^2 / (2C).

    ``y_index`` are row indices into ``weight`` (class positions, not raw labels).
    """
    logits = np.asarray(x, np.float64) @ np.asarray(weight, np.float64).T + np.asarray(bias, np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logz = np.log(np.exp(logits).sum(axis=1))
    ce = float((logz - logits[np.arange(len(y_index)), y_index]).sum())
    return ce + float((np.asarray(weight, np.float64) ** 2).sum()) / (2.0 * C)


def _fit(x: torch.Tensor, y: torch.Tensor, n_classes: int, C: float, init: tuple[torch.Tensor, torch.Tensor] | None,
         max_iter: int, tol: float) -> tuple[torch.Tensor, torch.Tensor, int]:
    """L-BFGS on the mean-scaled objective; x (n, d) and y (n,) class positions already on the device."""
    if not C > 0:
        raise ValueError(f"linear: C must be > 0, got {C}")
    n, d = x.shape
    if init is None:
        w = torch.zeros(n_classes, d, device=x.device, dtype=x.dtype, requires_grad=True)
        b = torch.zeros(n_classes, device=x.device, dtype=x.dtype, requires_grad=True)
    else:
        w = init[0].detach().clone().requires_grad_(True)
        b = init[1].detach().clone().requires_grad_(True)
    reg = 1.0 / (2.0 * C * n)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, max_eval=max_iter * 5 // 4 + 1,
                            tolerance_grad=tol, tolerance_change=1e-12, history_size=10,
                            line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(torch.addmm(b, x, w.T), y) + reg * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad(), _cpu_threads_for(x, n_classes):
        opt.step(closure)
    n_iter = int(opt.state[w].get("n_iter", 0))
    return w.detach(), b.detach(), n_iter


def fit_logreg(x: np.ndarray, y: np.ndarray, C: float, *, standardize: bool = True, max_iter: int = 1000,
               tol: float = 1e-4, device: str = "cpu", init: LogReg | None = None,
               stats: tuple[np.ndarray, np.ndarray] | None = None) -> LogReg:
    """Fit one model at a fixed C. ``stats`` = (mean, scale) to standardise with (default: those of ``x``).

    Stops when the max-abs gradient of the mean-scaled objective is <= ``tol`` (scikit-learn's lbfgs uses the
    same criterion, scipy's ``pgtol``, with the same default 1e-4) or after ``max_iter`` L-BFGS iterations;
    ``init`` warm-starts from a model over the same classes.
    """
    x = np.asarray(x, np.float32)
    classes, y_index = np.unique(np.asarray(y, np.int64), return_inverse=True)
    mean = scale = None
    if standardize:
        mean, scale = stats if stats is not None else standardizer(x)
        x = (x - mean) / scale
    dev = torch.device(device)
    start = None
    if init is not None:
        if not np.array_equal(init.classes, classes):
            raise ValueError("linear: warm start from a model over different classes")
        start = (torch.from_numpy(init.weight).to(dev), torch.from_numpy(init.bias).to(dev))
    w, b, n_iter = _fit(torch.from_numpy(x).to(dev), torch.from_numpy(y_index).to(dev), len(classes), C, start,
                        max_iter, tol)
    return LogReg(w.cpu().numpy(), b.cpu().numpy(), classes, mean, scale, n_iter)


@dataclass
class Sweep:
    """The outcome of :func:`sweep_C`: the chosen C, validation accuracy per C, and the model refit at it."""

    C: float
    val_top1: dict[float, float]
    model: LogReg
    iters: dict[float, int] = field(default_factory=dict)


def sweep_C(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
            Cs: Sequence[float] = DEFAULT_CS, *, standardize: bool = True, max_iter: int = 1000,
            tol: float = 1e-4, device: str = "cpu") -> Sweep:
    """Choose C on (val_x, val_y) over ``Cs`` (warm-started, increasing C), then refit on train+val.

    Standardisation statistics come from train+val. Ties in validation accuracy go to the smaller C.
    """
    Cs = sorted({float(c) for c in Cs})
    if not Cs or Cs[0] <= 0:
        raise ValueError(f"linear: the C grid must be non-empty and positive, got {Cs}")
    all_x = np.concatenate([train_x, val_x]).astype(np.float32)
    all_y = np.concatenate([train_y, val_y]).astype(np.int64)
    classes = np.unique(all_y)
    stats = standardizer(all_x) if standardize else None
    x_fit = all_x if stats is None else (all_x - stats[0]) / stats[1]
    dev = torch.device(device)
    x_t = torch.from_numpy(x_fit).to(dev)
    y_t = torch.from_numpy(np.searchsorted(classes, all_y)).to(dev)
    n_train = len(train_x)
    scores: dict[float, float] = {}
    iters: dict[float, int] = {}
    params: dict[float, tuple[torch.Tensor, torch.Tensor]] = {}
    prev = None
    for C in Cs:
        w, b, iters[C] = _fit(x_t[:n_train], y_t[:n_train], len(classes), C, prev, max_iter, tol)
        pred = (torch.addmm(b, x_t[n_train:], w.T)).argmax(dim=1)
        scores[C] = float((pred == y_t[n_train:]).float().mean()) if len(val_y) else float("nan")
        params[C] = prev = (w, b)
    best = max(Cs, key=lambda c: (scores[c], -c))
    w, b, n_iter = _fit(x_t, y_t, len(classes), best, params[best], max_iter, tol)
    mean, scale = stats if stats is not None else (None, None)
    model = LogReg(w.cpu().numpy(), b.cpu().numpy(), classes, mean, scale, n_iter)
    return Sweep(best, scores, model, iters)


def carve_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, str]:
    """Indices (train, val, how) of a seeded validation split of ``labels``: stratified when every class has at
    least two samples, otherwise a plain seeded random split (``how`` says which)."""
    if not 0 < fraction < 1:
        raise ValueError(f"linear: val_fraction must be in (0, 1), got {fraction}")
    n = len(labels)
    n_val = int(np.ceil(fraction * n))
    if n < 2 or n_val >= n:
        raise ValueError(f"linear: cannot carve a validation split from {n} train samples; pass a fixed C")
    counts = np.bincount(labels - labels.min())
    if counts[counts > 0].min() >= 2 and n_val >= (counts > 0).sum() and n - n_val >= (counts > 0).sum():
        from benchmark.data import stratified_split

        train, val = stratified_split(labels, fraction, seed)
        return train, val, "stratified"
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val]), "random"
