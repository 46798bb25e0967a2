"""The losses of the 2021 methods (DINO, Barlow Twins, MoCo v3, MAE), as plain functions of tensors.

- :func:`dino_loss`: DINO's cross-entropy between the centred, sharpened teacher distribution of each global view
  and the student distribution of every *other* view (Caron et al., 2021, "Emerging Properties in
  Self-Supervised Vision Transformers", Algorithm 1 and eq. 3), averaged over the pairs; :func:`dino_center`
  is the centre's moving average ``c <- m c + (1 - m) mean(teacher outputs of the global batch)``;
  :func:`linear_warmup` the teacher-temperature warm-up.
- :func:`barlow_twins_loss`: ``sum_i (1 - C_ii)^2 + lambda sum_{i != j} C_ij^2`` with ``C`` the cross-correlation of
  the two views' embeddings, each batch-normalised over the *global* batch (Zbontar et al., 2021, "Barlow Twins",
  eq. 1-2; the authors' code and lightly normalise with ``BatchNorm1d(affine=False)``: biased variance, eps 1e-5).
- :func:`mocov3_loss`: MoCo v3's symmetric InfoNCE ``ctr(q1, k2) + ctr(q2, k1)``, ``ctr(q, k) = 2 tau CE(q k^T /
  tau, positives)`` over L2-normalised vectors, the keys gathered from every rank (Chen, Xie & He, 2021, "An
  Empirical Study of Training Self-Supervised Vision Transformers", Algorithm 1).
- :func:`mae_loss`: MAE's mean squared error between predicted and true pixels of the *masked* patches only,
  the targets normalised per patch (``norm_pix_loss``: mean 0, variance 1 with the unbiased variance + 1e-6)
  (He et al., 2022, "Masked Autoencoders Are Scalable Vision Learners", sec. 3); :func:`patchify` cuts images
  into the patch vectors it compares (row-major patches, each ``(p, p, C)`` flattened, as MAE and lightly).

Like :mod:`benchmark.methods.losses`, each computes in float32 with autocast off. ``tests/test_method_losses_2021.py``
checks each against hand-written loops of the papers' formulas and, when installed, lightly's implementations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmark.methods.losses import full_precision, gather, rank

__all__ = ["barlow_twins_loss", "dino_center", "dino_loss", "linear_warmup", "mae_loss", "mocov3_loss", "patchify"]


def linear_warmup(step: int, warmup_steps: int, start: float, end: float) -> float:
    """``start`` at step 0, rising linearly to ``end`` at ``warmup_steps`` and staying there (DINO's teacher
    temperature; no warm-up when ``warmup_steps`` is 0)."""
    if warmup_steps <= 0 or step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """DINO's loss over multi-crop outputs: ``student`` holds the head outputs (B, K) of every view (the global
    views first, in the teacher's order), ``teacher`` those of the global views (detached here); ``center`` (K,)
    or (1, K). For each teacher view ``t`` and student view ``s != t``: ``mean_b -sum_k softmax((teacher - c) /
    teacher_temp) log softmax(student / student_temp)``, averaged over the pairs. ValueError without a pair."""
    pairs = [(t, s) for t in range(len(teacher)) for s in range(len(student)) if s != t]
    if not pairs:
        raise ValueError(f"dino_loss needs at least one cross-view pair; got {len(teacher)} teacher and "
                         f"{len(student)} student views")
    with full_precision(student[0]):
        targets = [F.softmax((t.detach().float() - center.float().reshape(1, -1)) / teacher_temp, dim=-1)
                   for t in teacher]
        logs = [F.log_softmax(s.float() / student_temp, dim=-1) for s in student]
        terms = [-(targets[t] * logs[s]).sum(dim=-1).mean() for t, s in pairs]
        return torch.stack(terms).sum() / len(pairs)


@torch.no_grad()
def dino_center(center: torch.Tensor, teacher: list[torch.Tensor], momentum: float = 0.9) -> torch.Tensor:
    """The new centre ``momentum * center + (1 - momentum) * mean`` of the teacher outputs of every global view
    over the global batch (every rank's rows, as the authors' all-reduce), in ``center``'s shape."""
    with full_precision(teacher[0]):
        rows = gather(torch.cat([t.detach().float() for t in teacher]))
        return center * momentum + rows.mean(dim=0).reshape(center.shape) * (1 - momentum)


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambda_: float = 5e-3, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins over the global batch: ``C = bn(z1)^T bn(z2) / N`` (``bn``: per-dimension mean 0, biased
    variance 1 + ``eps``), loss ``sum_i (1 - C_ii)^2 + lambda_ * sum_{i != j} C_ij^2``. Needs >= 2 samples."""
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(f"barlow_twins_loss needs two (N, D) embeddings of one shape, got {tuple(z1.shape)} and "
                         f"{tuple(z2.shape)}")
    with full_precision(z1):
        g1, g2 = gather(z1.float()), gather(z2.float())
        n = g1.shape[0]
        if n < 2:
            raise ValueError("barlow_twins_loss needs a batch of at least 2 samples (batch normalisation of one "
                             "is undefined)")
        c = _batch_norm(g1, eps).T @ _batch_norm(g2, eps) / n
        on_diagonal = (torch.diagonal(c) - 1).pow(2).sum()
        off_diagonal = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
        return on_diagonal + lambda_ * off_diagonal


def _batch_norm(z: torch.Tensor, eps: float) -> torch.Tensor:
    return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + eps)


def mocov3_loss(q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor,
                temperature: float = 0.2) -> torch.Tensor:
    """MoCo v3: ``ctr(q1, k2) + ctr(q2, k1)``. Queries (N, D) of this rank; keys (N, D) detached and gathered from
    every rank; the positive of query ``i`` is key ``i`` of this rank (``i + N * rank`` globally); the cross-entropy
    is multiplied by ``2 * temperature``, as the paper's pseudo-code."""
    if not q1.shape == q2.shape == k1.shape == k2.shape or q1.ndim != 2:
        raise ValueError(f"mocov3_loss needs four (N, D) tensors of one shape, got {tuple(q1.shape)}, "
                         f"{tuple(q2.shape)}, {tuple(k1.shape)}, {tuple(k2.shape)}")
    with full_precision(q1):
        return _ctr(q1, k2, temperature) + _ctr(q2, k1, temperature)


def _ctr(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    q = F.normalize(q.float(), dim=1)
    keys = gather(F.normalize(k.detach().float(), dim=1))
    labels = torch.arange(q.shape[0], device=q.device) + q.shape[0] * rank()
    return F.cross_entropy(q @ keys.T / temperature, labels) * (2 * temperature)


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) images -> (B, H/p * W/p, p * p * C) patch vectors, patches row-major, each (p, p, C) flattened.
    ValueError when ``patch`` does not divide H and W."""
    b, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"patch size {patch} does not divide the image size {h}x{w}")
    x = images.reshape(b, c, h // patch, patch, w // patch, patch)
    return torch.einsum("bchpwq->bhwpqc", x).reshape(b, (h // patch) * (w // patch), patch * patch * c)


def mae_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, norm_pix: bool = True) -> torch.Tensor:
    """MAE: ``pred`` and ``target`` (B, L, P) patch vectors, ``mask`` (B, L) with 1 on the masked (hidden)
    patches; the mean over masked patches of the per-patch mean squared error. With ``norm_pix`` each target patch
    is normalised to mean 0 and (unbiased) variance 1 first (eps 1e-6)."""
    if pred.shape != target.shape or pred.ndim != 3 or mask.shape != pred.shape[:2]:
        raise ValueError(f"mae_loss needs pred and target (B, L, P) and mask (B, L), got {tuple(pred.shape)}, "
                         f"{tuple(target.shape)}, {tuple(mask.shape)}")
    with full_precision(pred):
        target = target.float()
        if norm_pix:
            target = (target - target.mean(dim=-1, keepdim=True)) / (target.var(dim=-1, keepdim=True) + 1e-6).sqrt()
        per_patch = (pred.float() - target).pow(2).mean(dim=-1)
        mask = mask.float()
        return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)
