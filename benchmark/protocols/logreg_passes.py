"""The passes over the fit rows that the L-BFGS solver of :mod:`benchmark.protocols.logreg` makes, and its
curvature memory.

Each iteration needs, at theta and along a search direction p, the logits Z = X W^T + b and Z_p = X P^T + p_b
((n, classes) each), the line search's phi'(t) and phi''(t) on Z + t Z_p, and the gradient at the accepted step.
Two ways to hold the logits, chosen by :func:`~benchmark.protocols.logreg.solver_logits`:

* :class:`ResidentLogits`: Z and Z_p are kept whole (2 x 4 n classes bytes); every iteration costs exactly two
  matrix products (X p and the gradient), however many trials the line search takes. Used on a GPU (the
  documented device bound: fit data + the two logits) and wherever (n, classes) fits in one chunk.
* :class:`StreamedLogits`: nothing of size (n, classes) is kept; each line-search trial walks the rows in chunks,
  forming that chunk's Z and Z_p (two products) and, speculatively, its part of the gradient at the trial step
  (a third), so the accepted trial's gradient needs no further pass. Memory: one chunk of each, O(chunk x
  classes) + O(d x classes); time: three products per trial instead of two per iteration. Z is recomputed from
  theta at every trial, where the resident logits are updated incrementally (refreshed every 25 iterations), so
  the two agree to float32 rounding, not bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Memory:
    """L-BFGS curvature pairs (s, y), newest last."""

    s: list[torch.Tensor] = field(default_factory=list)
    y: list[torch.Tensor] = field(default_factory=list)


def direction(g: torch.Tensor, mem: Memory) -> torch.Tensor:
    """-H g by the L-BFGS two-loop recursion (H0 = gamma I, gamma = s.y / y.y of the newest pair)."""
    q = -g
    alphas = []
    for s, y in zip(reversed(mem.s), reversed(mem.y), strict=True):
        a = float(s @ q) / float(s @ y)
        q.add_(y, alpha=-a)
        alphas.append(a)
    if mem.s:
        q.mul_(float(mem.s[-1] @ mem.y[-1]) / float(mem.y[-1] @ mem.y[-1]))
    for s, y, a in zip(mem.s, mem.y, reversed(alphas), strict=True):
        q.add_(s, alpha=a - float(y @ q) / float(s @ y))
    return q


class _Rows:
    """What both kinds share: the data, the class positions, the chunks of rows and the gradient's P - Y step."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, n_classes: int, reg: float, span: int) -> None:
        self.x, self.k, self.reg = x, n_classes, reg
        self.n, self.d = x.shape
        self.nw = n_classes * self.d
        self.rows = y[:, None]
        self.minus_one = torch.full_like(self.rows, -1, dtype=x.dtype)
        self.spans = [slice(a, min(self.n, a + span)) for a in range(0, self.n, span)]

    def logits(self, t: torch.Tensor, sl: slice | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
        # torch's matmul even on CPU: numpy's OpenBLAS is ~25% faster for this product on one thread, but
        # alternating OpenBLAS and torch's OpenMP pool made a 2-thread fit twice as slow (measured)
        x = self.x if sl is None else self.x[sl]
        return torch.addmm(t[self.nw:], x, t[:self.nw].view(self.k, self.d).T, out=out)

    def add_gradient(self, g: torch.Tensor, t: torch.Tensor, p: torch.Tensor, sl: slice, first: bool) -> None:
        """Adds rows ``sl``'s part of the gradient at ``t`` (``p`` their softmax, overwritten with (P - Y) / n)
        to ``g``; the first chunk also writes the penalty's part, 2 reg W."""
        p.scatter_add_(1, self.rows[sl], self.minus_one[sl]).div_(self.n)
        gw = g[:self.nw].view(self.k, self.d)
        if first:
            torch.addmm(t[:self.nw].view(self.k, self.d), p.T, self.x[sl], beta=2.0 * self.reg, out=gw)
            torch.sum(p, 0, out=g[self.nw:])
        else:
            gw.addmm_(p.T, self.x[sl])
            g[self.nw:].add_(p.sum(0))


class ResidentLogits(_Rows):
    """Z and Z_p kept whole; softmax work by chunks of rows (one chunk, the whole: then the operations are
    exactly the unchunked ones)."""

    def start(self, theta: torch.Tensor) -> torch.Tensor:
        """The gradient at ``theta``, where the solver starts."""
        self.z = self.logits(theta)
        self.zp = torch.empty_like(self.z)
        self.prob: torch.Tensor | None = None
        return self.gradient(theta)

    def refresh(self, theta: torch.Tensor) -> None:
        """Z recomputed from ``theta`` against the incremental updates' rounding drift."""
        self.logits(theta, out=self.z)

    def along(self, p: torch.Tensor) -> None:
        self.logits(p, out=self.zp)
        self.zp_y = self.zp.gather(1, self.rows).squeeze(1)

    def slopes(self, step: float) -> tuple[float, float]:
        """Means over rows of phi'(step) and phi''(step)'s data terms."""
        d1 = d2 = 0.0
        whole = len(self.spans) == 1
        for sl in self.spans:
            zp_s = self.zp[sl]
            prob = torch.softmax(torch.add(self.z[sl], zp_s, alpha=step), 1)
            pz = prob * zp_s
            ez = pz.sum(1)
            first, second = ez - self.zp_y[sl], pz.mul_(zp_s).sum(1) - ez * ez
            if whole:
                self.prob = prob  # the accepted trial's softmax is the gradient's
                return float(first.mean()), float(second.mean())
            d1, d2 = d1 + float(first.sum()), d2 + float(second.sum())
        return d1 / self.n, d2 / self.n

    def accept(self, step: float, theta: torch.Tensor, tried: bool) -> torch.Tensor:
        """Moves Z to ``theta`` = the old theta + ``step`` p and returns the gradient there (``tried``: the last
        :meth:`slopes` call was at ``step``)."""
        if not tried and len(self.spans) == 1:
            self.prob = torch.softmax(torch.add(self.z, self.zp, alpha=step), 1)
        self.z.add_(self.zp, alpha=step)
        g = self.gradient(theta, self.prob if len(self.spans) == 1 else None)
        self.prob = None
        return g

    def gradient(self, t: torch.Tensor, prob: torch.Tensor | None = None) -> torch.Tensor:
        """(P - Y)^T X / n + penalty, and sum for b, at ``t`` whose logits are Z: P from ``prob`` (the softmax
        of the whole of Z, overwritten) or, chunk by chunk, from Z."""
        g = torch.empty_like(t)
        for i, sl in enumerate(self.spans):
            p = prob if prob is not None else torch.softmax(self.z[sl], 1)
            self.add_gradient(g, t, p, sl, i == 0)
        return g


class StreamedLogits(_Rows):
    """No (n, classes) tensor: every pass forms its chunk's logits from theta and p."""

    def start(self, theta: torch.Tensor) -> torch.Tensor:
        self.theta = theta
        g = torch.empty_like(theta)
        for i, sl in enumerate(self.spans):
            self.add_gradient(g, theta, torch.softmax(self.logits(theta, sl), 1), sl, i == 0)
        return g

    def refresh(self, theta: torch.Tensor) -> None:
        """Nothing drifts: the logits are formed from theta at every pass."""

    def along(self, p: torch.Tensor) -> None:
        self.p = p  # read by the trials, before the solver scales it in place into the step
        self.tried: tuple[float, torch.Tensor] | None = None

    def slopes(self, step: float) -> tuple[float, float]:
        """Means over rows of phi'(step) and phi''(step)'s data terms, and the gradient at theta + step p."""
        t = torch.add(self.theta, self.p, alpha=step)
        g = torch.empty_like(t)
        d1 = d2 = 0.0
        for i, sl in enumerate(self.spans):
            zp_s = self.logits(self.p, sl)
            prob = torch.softmax(self.logits(self.theta, sl).add_(zp_s, alpha=step), 1)
            pz = prob * zp_s
            ez = pz.sum(1)
            first = ez - zp_s.gather(1, self.rows[sl]).squeeze(1)
            second = pz.mul_(zp_s).sum(1) - ez * ez
            d1, d2 = d1 + float(first.sum()), d2 + float(second.sum())
            self.add_gradient(g, t, prob, sl, i == 0)
        self.tried = (step, g)
        return d1 / self.n, d2 / self.n

    def accept(self, step: float, theta: torch.Tensor, tried: bool) -> torch.Tensor:
        self.theta = theta
        if tried and self.tried is not None and self.tried[0] == step:
            return self.tried[1]
        return self.start(theta)
