"""The losses of the built-in pretraining methods, as plain functions of embeddings (no modules, no state).

- :func:`nt_xent`: SimCLR's normalised temperature-scaled cross-entropy (Chen et al., 2020, "A Simple Framework
  for Contrastive Learning of Visual Representations", eq. 1), over the 2N views of the *global* batch: each
  view's positive is the other view of its sample, its negatives every other view on every rank.
- :func:`byol_loss`: BYOL's normalised regression ``2 - 2 cos(p, z')`` (Grill et al., 2020, "Bootstrap Your Own
  Latent", eq. 2), symmetrised: the sum of both directions, as the paper's ``L + L~``.
- :func:`vicreg_loss`: VICReg's invariance + variance + covariance terms (Bardes et al., 2022, "VICReg:
  Variance-Invariance-Covariance Regularization", eq. 6; 25 / 25 / 1, eps 1e-4), the variance and covariance over
  the global batch as in the authors' code and lightly's ``VICRegLoss(gather_distributed=True)``.

Each loss computes in float32 with autocast switched off inside it (the embeddings are cast up): bf16 logits
and covariances lose the precision these losses need, and the cost is negligible next to the backbone's.
Global batches come from :func:`benchmark.runtime.distributed.gather` (rank-ordered concatenation along dim 0
that passes gradients back; identity on one process). ``tests/test_method_losses.py`` checks each loss against
explicit loops over the papers' formulas and, when installed, lightly's implementations.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["byol_loss", "full_precision", "gather", "nt_xent", "rank", "vicreg_loss"]


def gather(t: torch.Tensor) -> torch.Tensor:
    """``t`` of every rank, concatenated along dim 0 in rank order, with gradients (identity on one process):
    :func:`benchmark.runtime.distributed.gather`, imported when a loss runs."""
    from benchmark.runtime.distributed import gather as gather_all

    return gather_all(t)


def rank() -> int:
    """This process's rank (0 on one process): :func:`benchmark.runtime.distributed.rank`."""
    from benchmark.runtime.distributed import rank as this_rank

    return this_rank()


def full_precision(t: torch.Tensor) -> Any:
    """A context with autocast off on ``t``'s device, for the loss's own arithmetic."""
    return torch.autocast(t.device.type, enabled=False)


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The NT-Xent loss of two views' embeddings ``z1``, ``z2`` (N, D), averaged over this rank's 2N views.

    Every view is a query; the keys are all 2M views of the global batch (M = N x world size), itself excluded;
    its positive is the other view of the same sample. Cosine similarities are divided by ``temperature``.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"nt_xent needs two (N, D) embeddings of one shape, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    n = z1.shape[0]
    with full_precision(z1):
        z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
        k1, k2 = gather(z1), gather(z2)  # (M, D) each
        m, offset = k1.shape[0], rank() * n
        queries = torch.cat([z1, z2])  # (2N, D): rows i and N + i are the two views of sample i
        logits = queries @ torch.cat([k1, k2]).T / temperature  # (2N, 2M)
        local = torch.arange(n, device=z1.device) + offset
        self_index = torch.cat([local, local + m])
        positive = torch.cat([local + m, local])
        logits = logits.masked_fill(F.one_hot(self_index, 2 * m).bool(), float("-inf"))
        return F.cross_entropy(logits, positive)


def byol_loss(p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor) -> torch.Tensor:
    """BYOL's symmetric loss: ``mean(2 - 2 cos(p1, t2)) + mean(2 - 2 cos(p2, t1))``.

    ``p1``, ``p2``: the online predictions of views 1 and 2; ``t1``, ``t2``: the target projections of the same
    views, detached here (the target is never trained by the loss). Ranges over [0, 8].
    """
    with full_precision(p1):
        p1, p2, t1, t2 = p1.float(), p2.float(), t1.detach().float(), t2.detach().float()
        forward = 2 - 2 * F.cosine_similarity(p1, t2, dim=-1)
        backward = 2 - 2 * F.cosine_similarity(p2, t1, dim=-1)
        return forward.mean() + backward.mean()


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, invariance: float = 25.0, variance: float = 25.0,
                covariance: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg: ``invariance * mse(z1, z2) + variance * mean_v hinge(1 - std) + covariance * sum_v off-diag^2 / D``.

    The invariance term is over this rank's pairs; the variance term (averaged over both branches) and the
    covariance term (summed over both branches) over the global batch, which needs at least 2 samples.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"vicreg_loss needs two (N, D) embeddings of one shape, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    with full_precision(z1):
        z1, z2 = z1.float(), z2.float()
        inv = F.mse_loss(z1, z2)
        g1, g2 = gather(z1), gather(z2)
        if g1.shape[0] < 2:
            raise ValueError("vicreg_loss needs a batch of at least 2 samples (the variance of one is undefined)")
        var = (_variance_term(g1, eps) + _variance_term(g2, eps)) / 2
        cov = _covariance_term(g1) + _covariance_term(g2)
        return invariance * inv + variance * var + covariance * cov


def _variance_term(z: torch.Tensor, eps: float) -> torch.Tensor:
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(1 - std).mean()


def _covariance_term(z: torch.Tensor) -> torch.Tensor:
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = (z.T @ z) / (n - 1)
    off_diagonal = cov - torch.diag(torch.diagonal(cov))
    return off_diagonal.pow(2).sum() / d
