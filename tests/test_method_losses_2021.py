"""The 2021 methods' losses (benchmark.methods.recent_losses) against independent references, on fixed tensors.

Each loss is compared with an explicit float64 loop over its paper's formula or pseudo-code (written for clarity,
not speed) and, where lightly has it (``lightly.loss.DINOLoss``, ``BarlowTwinsLoss``, MAE's ``patchify`` +
``normalize_mean_var`` + ``MSELoss`` on the masked patches), with lightly: tolerance 1e-6. lightly has no MoCo v3
loss; its check is the pseudo-code of the paper's Algorithm 1 transcribed with torch. The distributed variants are
checked by simulating two ranks through ``recent_losses.gather`` / ``rank``.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from benchmark.methods import recent_losses
from benchmark.methods.recent_losses import (
    barlow_twins_loss,
    dino_center,
    dino_loss,
    linear_warmup,
    mae_loss,
    mocov3_loss,
    patchify,
)

TOL = 1e-6
LIGHTLY = "lightly is not installed (pip install lightly, or the test extra) - the lightly cross-check is skipped"


def _randn(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _close(got: torch.Tensor | float, want: float) -> bool:
    return abs(float(got) - want) <= TOL * max(1.0, abs(want))


# --- hand-written references -----------------------------------------------------------------------------------
def ref_dino(student: list[torch.Tensor], teacher: list[torch.Tensor], center: list[float], ts: float,
             tt: float) -> float:
    """DINO Algorithm 1 / eq. 3: H(Pt(x), Ps(x')) = -sum_k pt_k log ps_k, averaged over the batch, over every
    (teacher global view t, student view s != t) pair; pt = softmax((gt - c) / tt), ps = softmax(gs / ts)."""
    def softmax(row: list[float], temp: float) -> list[float]:
        m = max(row)
        e = [math.exp((v - m) / temp) for v in row]
        return [v / sum(e) for v in e]

    total, pairs = 0.0, 0
    for t, tv in enumerate(teacher):
        for s, sv in enumerate(student):
            if s == t:
                continue
            pair = 0.0
            for b in range(len(tv)):
                pt = softmax([v - c for v, c in zip(tv[b].double().tolist(), center, strict=True)], tt)
                ps = softmax(sv[b].double().tolist(), ts)
                pair += -sum(p * math.log(q) for p, q in zip(pt, ps, strict=True))
            total += pair / len(tv)
            pairs += 1
    return total / pairs


def ref_barlow(z1: torch.Tensor, z2: torch.Tensor, lam: float, eps: float = 1e-5) -> float:
    """Barlow Twins eq. 1-2: C_ij = sum_b za_bi zb_bj / N on batch-normalised embeddings; sum (1 - C_ii)^2 +
    lam sum_{i != j} C_ij^2."""
    a, b = z1.double().tolist(), z2.double().tolist()
    n, d = len(a), len(a[0])

    def norm(z: list[list[float]]) -> list[list[float]]:
        out = [[0.0] * d for _ in range(n)]
        for j in range(d):
            mean = sum(z[i][j] for i in range(n)) / n
            var = sum((z[i][j] - mean) ** 2 for i in range(n)) / n
            for i in range(n):
                out[i][j] = (z[i][j] - mean) / math.sqrt(var + eps)
        return out

    na, nb = norm(a), norm(b)
    loss = 0.0
    for i in range(d):
        for j in range(d):
            c = sum(na[k][i] * nb[k][j] for k in range(n)) / n
            loss += (1 - c) ** 2 if i == j else lam * c * c
    return loss


def ref_mocov3(q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, tau: float) -> float:
    """MoCo v3's ctr(q, k) = 2 tau * mean_i -log(exp(q_i.k_i / tau) / sum_j exp(q_i.k_j / tau)), unit vectors."""
    def unit(x: torch.Tensor) -> list[list[float]]:
        return [[v / math.sqrt(sum(u * u for u in row)) for v in row] for row in x.double().tolist()]

    def ctr(q: list[list[float]], k: list[list[float]]) -> float:
        total = 0.0
        for i, qi in enumerate(q):
            logits = [sum(a * b for a, b in zip(qi, kj, strict=True)) / tau for kj in k]
            total += -(logits[i] - math.log(sum(math.exp(v) for v in logits)))
        return 2 * tau * total / len(q)

    return ctr(unit(q1), unit(k2)) + ctr(unit(q2), unit(k1))


def ref_mae(pred: torch.Tensor, images: torch.Tensor, mask: torch.Tensor, p: int, norm_pix: bool) -> float:
    """MAE: patches cut by hand (row-major, (p, p, C) per patch), normalised per patch (unbiased var + 1e-6),
    the mean squared error per patch averaged over the masked patches."""
    img = images.double().tolist()
    bsz, c, h, w = images.shape
    total, count = 0.0, 0
    for b in range(bsz):
        for gy in range(h // p):
            for gx in range(w // p):
                index = gy * (w // p) + gx
                if not mask[b, index]:
                    continue
                patch = [img[b][ch][gy * p + y][gx * p + x] for y in range(p) for x in range(p) for ch in range(c)]
                if norm_pix:
                    mean = sum(patch) / len(patch)
                    var = sum((v - mean) ** 2 for v in patch) / (len(patch) - 1)
                    patch = [(v - mean) / math.sqrt(var + 1e-6) for v in patch]
                guess = pred[b, index].double().tolist()
                total += sum((g - t) ** 2 for g, t in zip(guess, patch, strict=True)) / len(patch)
                count += 1
    return total / count


def mocov3_pseudocode(q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor, tau: float) -> float:
    """Algorithm 1 of the MoCo v3 paper, transcribed: ctr(q, k) = CrossEntropyLoss(mm(q, k.t()) / tau, range(N))
    * 2 * tau on normalised q and k."""
    def ctr(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q, k = F.normalize(q.double(), dim=1), F.normalize(k.double(), dim=1)
        logits = torch.mm(q, k.t())
        return torch.nn.CrossEntropyLoss()(logits / tau, torch.arange(len(q))) * 2 * tau

    return float(ctr(q1, k2) + ctr(q2, k1))


# --- DINO ------------------------------------------------------------------------------------------------------
def _crops(n_local: int = 3, b: int = 4, k: int = 6) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
    student = [_randn(b, k, seed=10 + i, scale=2.0) for i in range(2 + n_local)]
    teacher = [_randn(b, k, seed=20 + i, scale=2.0) for i in range(2)]
    return student, teacher, _randn(k, seed=30, scale=0.3)


@pytest.mark.parametrize(("n_local", "ts", "tt"), [(0, 0.1, 0.04), (3, 0.1, 0.07), (2, 0.5, 0.2)])
def test_dino_loss_matches_the_loop(n_local, ts, tt):
    student, teacher, center = _crops(n_local)
    got = dino_loss(student, teacher, center, ts, tt)
    assert got.shape == () and _close(got, ref_dino(student, teacher, center.tolist(), ts, tt))


def test_dino_loss_trains_only_the_student_and_needs_a_pair():
    student, teacher, center = _crops(1)
    student = [s.requires_grad_(True) for s in student]
    teacher = [t.requires_grad_(True) for t in teacher]
    dino_loss(student, teacher, center).backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert all(t.grad is None for t in teacher)
    with pytest.raises(ValueError, match="cross-view pair"):
        dino_loss(student[:1], teacher[:1], center)


def test_dino_center_is_a_moving_average_of_the_teacher_mean():
    _, teacher, center = _crops()
    rows = torch.cat(teacher).double()
    want = [0.9 * c + 0.1 * sum(rows[:, j].tolist()) / len(rows) for j, c in enumerate(center.tolist())]
    got = dino_center(center, teacher, 0.9)
    assert got.shape == center.shape and all(_close(g, w) for g, w in zip(got.tolist(), want, strict=True))


def test_linear_warmup_of_the_teacher_temperature():
    assert [linear_warmup(s, 4, 0.04, 0.08) for s in range(6)] == pytest.approx([0.04, 0.05, 0.06, 0.07, 0.08, 0.08])
    assert linear_warmup(0, 0, 0.04, 0.07) == 0.07


def test_dino_matches_lightly():
    lightly_loss = pytest.importorskip("lightly.loss", reason=LIGHTLY)
    student, teacher, center = _crops(4, k=8)
    reference = lightly_loss.DINOLoss(output_dim=8, student_temp=0.1, center_momentum=0.9)
    reference.center.copy_(center.view(1, 1, -1))
    for tt in (0.04, 0.07):
        want = reference(teacher, student, teacher_temp=tt)
        assert _close(dino_loss(student, teacher, center, 0.1, tt), float(want))
        center = dino_center(center, teacher, 0.9)  # lightly moved its centre in the call
        assert torch.allclose(center, reference.center.view(-1), atol=TOL)


# --- Barlow Twins ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lam", [5e-3, 0.5])
def test_barlow_twins_matches_the_loop(lam):
    z1, z2 = _randn(10, 5, seed=1), _randn(10, 5, seed=2, scale=3.0) + 1.0
    assert _close(barlow_twins_loss(z1, z2, lam), ref_barlow(z1, z2, lam))


def test_barlow_twins_is_zero_for_identical_decorrelated_views_and_checks_shapes():
    centred = _randn(8, 4, seed=3)
    z = torch.linalg.qr(centred - centred.mean(0))[0] * math.sqrt(8)  # zero-mean, orthogonal, variance 1 columns
    assert float(barlow_twins_loss(z, z, 5e-3)) < 1e-8
    assert float(barlow_twins_loss(z, z.flip(1), 5e-3)) > 1.0  # the same view with its dimensions swapped
    with pytest.raises(ValueError, match="one shape"):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))


def test_barlow_twins_matches_lightly():
    lightly_loss = pytest.importorskip("lightly.loss", reason=LIGHTLY)
    z1, z2 = _randn(16, 6, seed=4), _randn(16, 6, seed=5)
    for lam in (5e-3, 0.1):
        want = lightly_loss.BarlowTwinsLoss(lambda_param=lam)(z1, z2)
        assert _close(barlow_twins_loss(z1, z2, lam), float(want))


# --- MoCo v3 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0.2, 1.0])
def test_mocov3_matches_the_loop_and_the_pseudocode(tau):
    q1, q2, k1, k2 = (_randn(6, 5, seed=s) for s in (40, 41, 42, 43))
    got = mocov3_loss(q1, q2, k1, k2, tau)
    assert _close(got, ref_mocov3(q1, q2, k1, k2, tau))
    assert _close(got, mocov3_pseudocode(q1, q2, k1, k2, tau))


def test_mocov3_keys_get_no_gradient():
    q1, q2, k1, k2 = (_randn(6, 5, seed=s).requires_grad_(True) for s in (40, 41, 42, 43))
    mocov3_loss(q1, q2, k1, k2).backward()
    assert q1.grad is not None and q2.grad is not None and k1.grad is None and k2.grad is None


def _simulate_rank(monkeypatch, r: int, others: list[torch.Tensor]) -> None:
    queue = list(others)

    def fake_gather(t: torch.Tensor) -> torch.Tensor:
        other = queue.pop(0)
        return torch.cat([t, other] if r == 0 else [other, t])

    monkeypatch.setattr(recent_losses, "gather", fake_gather)
    monkeypatch.setattr(recent_losses, "rank", lambda: r)


def test_mocov3_over_two_ranks_uses_every_key_and_the_rank_offset(monkeypatch):
    q1, q2, k1, k2 = (_randn(8, 5, seed=s) for s in (50, 51, 52, 53))
    full = ref_mocov3(q1, q2, k1, k2, 0.2)
    halves = []
    for r in (0, 1):
        mine, theirs = slice(4 * r, 4 * r + 4), slice(4 - 4 * r, 8 - 4 * r)
        _simulate_rank(monkeypatch, r, [F.normalize(k2[theirs], dim=1), F.normalize(k1[theirs], dim=1)])
        halves.append(float(mocov3_loss(q1[mine], q2[mine], k1[mine], k2[mine], 0.2)))
    assert _close(sum(halves) / 2, full)


def test_barlow_twins_over_two_ranks_is_the_global_loss(monkeypatch):
    z1, z2 = _randn(8, 4, seed=60), _randn(8, 4, seed=61)
    for r in (0, 1):
        mine, theirs = slice(4 * r, 4 * r + 4), slice(4 - 4 * r, 8 - 4 * r)
        _simulate_rank(monkeypatch, r, [z1[theirs], z2[theirs]])
        assert _close(barlow_twins_loss(z1[mine], z2[mine]), ref_barlow(z1, z2, 5e-3))


# --- MAE -------------------------------------------------------------------------------------------------------
def _mae_case(norm_pix: bool = True):
    images = _randn(2, 3, 8, 8, seed=70)
    target = patchify(images, 4)  # (2, 4, 48)
    pred = _randn(2, 4, 48, seed=71)
    mask = torch.tensor([[1, 0, 1, 1], [0, 1, 1, 1]])
    return images, target, pred, mask


@pytest.mark.parametrize("norm_pix", [True, False])
def test_mae_loss_matches_the_loop_on_masked_patches_only(norm_pix):
    images, target, pred, mask = _mae_case()
    got = mae_loss(pred, target, mask, norm_pix)
    assert _close(got, ref_mae(pred, images, mask, 4, norm_pix))
    changed = pred.clone()
    changed[0, 1] += 100.0  # a visible patch: no effect
    assert float(mae_loss(changed, target, mask, norm_pix)) == float(got)


def test_patchify_rejects_a_patch_size_that_does_not_divide_the_image():
    with pytest.raises(ValueError, match="does not divide"):
        patchify(torch.zeros(1, 3, 10, 10), 4)


def test_mae_matches_lightly():
    pytest.importorskip("lightly", reason=LIGHTLY)
    from lightly.models import utils

    images, target, pred, mask = _mae_case()
    assert torch.equal(utils.patchify(images, 4), target)
    keep = mask.bool()
    want = torch.nn.MSELoss()(pred[keep], utils.normalize_mean_var(utils.patchify(images, 4), dim=-1)[keep])
    assert _close(mae_loss(pred, target, mask), float(want))


def test_the_losses_compute_in_float32_under_autocast():
    student, teacher, center = _crops(2)
    z1, z2 = _randn(8, 4, seed=1), _randn(8, 4, seed=2)
    images, target, pred, mask = _mae_case()
    cases = [(lambda *a: dino_loss(list(a[:4]), list(a[4:]), center), (*student, *teacher)),
             (barlow_twins_loss, (z1, z2)), (mocov3_loss, (z1, z2, z2, z1)), (lambda p, t: mae_loss(p, t, mask), (pred, target))]
    for fn, args in cases:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = fn(*(a.bfloat16() for a in args))
        want = fn(*(a.bfloat16().float() for a in args))
        assert got.dtype == torch.float32 and abs(float(got) - float(want)) < 1e-5
