"""The pretraining loop (benchmark.methods.trainer): budgets, schedule, optimiser groups, EMA, guards.

The tiny methods here (a linear+BN backbone on random vectors, an InfoNCE objective using gather(), a BYOL-like
pair) are reused by test_checkpoint.py and test_methods_ddp.py.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.errors import ContractError, OptionError
from benchmark.methods.budget import format_budget, parse_budget
from benchmark.methods.trainer import TrainResult, train
from benchmark.runtime.distributed import gather
from benchmark.runtime.training import LARS, build_optimizer, ema_tau, ema_update, lr_multiplier
from benchmark.specs import Backbone, Budget, Split, TrainDefaults

DIM_IN, DIM = 8, 6


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one intra-op thread is faster than several fighting over a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- tiny methods ------------------------------------------------------------------------------------------
class TinyEncoder(torch.nn.Module):
    """Linear + BatchNorm: weights, a bias, a norm scale and running buffers."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(DIM_IN, DIM)
        self.bn = torch.nn.BatchNorm1d(DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.lin(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)


def tiny_backbone(seed: int = 0) -> Backbone:
    torch.manual_seed(seed)
    return Backbone(resolved=None, encoder=TinyEncoder(), embed_dim=DIM, input_size=(1, 1, DIM_IN), mean=(0.0,),
                    std=(1.0,))


def tiny_data(n: int = 20, seed: int = 0) -> Split:
    rng = np.random.default_rng(seed)
    return Split([rng.standard_normal(DIM_IN).astype(np.float32) for _ in range(n)], np.arange(n) % 2)


class FakeClock:
    """Time that moves only when the objective says so (``advance``), never by itself."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """Symmetric InfoNCE over the (gathered) batch: positives on the diagonal."""
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    logits = z1 @ z2.T / temperature
    target = torch.arange(len(z1))
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class Contrastive(torch.nn.Module):
    """Backbone + head (with dropout, so the RNG matters) + InfoNCE over the global batch."""

    def __init__(self, backbone: Backbone, clock: FakeClock | None = None, step_s: float | list[float] = 0.0,
                 nan_at: int | None = None) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.head = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(DIM, 4))
        self.clock, self.step_s, self.nan_at, self.calls = clock, step_s, nan_at, 0
        self.labels_seen: list[torch.Tensor | None] = []

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        self.labels_seen.append(labels)
        if self.clock is not None:
            s = self.step_s
            self.clock.now += s[min(self.calls, len(s)) - 1] if isinstance(s, list) else s
        z1, z2 = (self.head(self.encoder.encode(v)) for v in views)
        loss = info_nce(gather(z1), gather(z2))
        return loss * float("nan") if self.calls == self.nan_at else loss


class BYOLLike(torch.nn.Module):
    """Online encoder + projector, a predictor, and an EMA target copy (a submodule, as methods usually hold it)."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.online = torch.nn.Sequential(self.encoder, torch.nn.Linear(DIM, 4))
        self.target = copy.deepcopy(self.online)
        self.predictor = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None) -> torch.Tensor:
        p1, p2 = (self.predictor(self.online(v)) for v in views)
        with torch.no_grad():
            t1, t2 = (self.target(v) for v in views)
        return (2 - F.cosine_similarity(p1, t2).mean() - F.cosine_similarity(p2, t1).mean())


class TinyMethod:
    """views: two noisy copies (torch RNG); objective: whichever module is given."""

    def __init__(self, objective: torch.nn.Module, defaults: TrainDefaults | None = None,
                 pairs: tuple = ()) -> None:
        self.objective = objective
        self.momentum_pairs = pairs
        self.defaults = defaults or TrainDefaults(optimizer="sgd", lr=0.1, reference_batch=4, batch_size=4,
                                                  weight_decay=1e-3, warmup_fraction=0.2, tau=0.9)

    def views(self, sample: np.ndarray) -> list[torch.Tensor]:
        x = torch.as_tensor(sample)
        return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


def contrastive_method(seed: int = 0, **kwargs) -> tuple[TinyMethod, Backbone]:
    backbone = tiny_backbone(seed)
    defaults = kwargs.pop("defaults", None)
    return TinyMethod(Contrastive(backbone, **kwargs), defaults), backbone


def byol_method(seed: int = 0, optimizer: str = "lars") -> tuple[TinyMethod, Backbone]:
    backbone = tiny_backbone(seed)
    objective = BYOLLike(backbone)
    defaults = TrainDefaults(optimizer=optimizer, lr=0.2, reference_batch=8, batch_size=4, weight_decay=1e-2,
                             warmup_fraction=0.1, tau=0.9, grad_clip=1.0)
    return TinyMethod(objective, defaults, pairs=((objective.online, objective.target),)), backbone


def run(method: TinyMethod, backbone: Backbone, tmp_path, budget: Budget, data: Split | None = None,
        **kwargs) -> TrainResult:
    kwargs.setdefault("config_digest", "digest-1")
    kwargs.setdefault("method_name", "tiny")
    return train(method, backbone, data or tiny_data(), budget=budget, workdir=tmp_path / "work", **kwargs)


# --- budgets -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "budget"), [
    ("3min", Budget(seconds=180.0)), ("90s", Budget(seconds=90.0)), ("1h", Budget(seconds=3600.0)),
    ("1.5h", Budget(seconds=5400.0)), ("500steps", Budget(steps=500)), ("10epochs", Budget(epochs=10)),
    ("2epochs,5min", Budget(epochs=2, seconds=300.0)), (" 1 Epoch , 20 STEPS ", Budget(epochs=1, steps=20)),
    ("1h,30min", Budget(seconds=5400.0)), ("1e3steps", Budget(steps=1000)),
])
def test_parse_budget(text, budget):
    assert parse_budget(text) == budget
    assert parse_budget(format_budget(budget)) == budget


@pytest.mark.parametrize(("text", "why"), [
    ("3 parsecs", "unknown unit 'parsecs'"), ("", "empty"), ("fast", "not a number with a unit"),
    ("10", "not a number with a unit"), ("0steps", "positive"), ("1.5steps", "whole number"),
    ("2epochs,3epochs", "epochs given twice"), ("5min,", "not a number with a unit"),
])
def test_parse_budget_errors(text, why):
    with pytest.raises(OptionError) as info:
        parse_budget(text)
    message = str(info.value)
    assert message.startswith(f"budget {text!r}: ") and why in message
    assert "write e.g. 3min, 90s, 500steps or 10epochs" in message


def test_format_budget():
    assert format_budget(Budget(epochs=2, seconds=300.0)) == "2epochs,5min"
    assert format_budget(Budget(steps=7, seconds=90.0)) == "7steps,90s"
    assert format_budget(Budget(seconds=7200.0)) == "2h"


# --- where budgets stop --------------------------------------------------------------------------------------
def test_steps_budget(tmp_path):
    result = run(*contrastive_method(), tmp_path, Budget(steps=7))
    assert (result.steps, result.stopped_by, result.estimated_total_steps) == (7, "steps", 7)
    assert result.steps_per_epoch == 5 and result.epochs == pytest.approx(1.4)
    assert len(result.loss_curve) == len(result.lr_curve) == 7 and result.resumed_from_step is None
    assert all(isinstance(v, float) and math.isfinite(v) for v in result.loss_curve)
    assert result.peak_memory_bytes > 0 and result.precision == "fp32"


@pytest.mark.parametrize(("budget", "steps", "by"), [
    (Budget(epochs=2), 10, "epochs"), (Budget(epochs=2, steps=50), 10, "epochs"),
    (Budget(epochs=2, steps=3), 3, "steps"),
])
def test_epochs_budget(tmp_path, budget, steps, by):
    result = run(*contrastive_method(), tmp_path, budget)
    assert (result.steps, result.stopped_by, result.epochs) == (steps, by, steps / 5)


def test_split_smaller_than_a_batch_is_one_batch(tmp_path):
    result = run(*contrastive_method(), tmp_path, Budget(epochs=3), data=tiny_data(3), batch_size=8)
    assert (result.batch_size, result.steps_per_epoch, result.steps) == (3, 1, 3)


def test_seconds_budget_fixes_the_schedule_from_timed_steps(tmp_path):
    clock = FakeClock()
    method, backbone = contrastive_method(clock=clock, step_s=0.5)
    result = run(method, backbone, tmp_path, Budget(seconds=10.0), clock=clock)
    # 5 timed steps (real ones), 4 intervals of 0.5 s: 2 steps/s; 7.5 s left after 2.5 s: 15 more steps
    assert (result.estimated_total_steps, result.steps, result.stopped_by) == (20, 20, "seconds")
    assert result.seconds == pytest.approx(10.0) and "2 steps/s" in result.estimate
    assert result.samples_per_s == pytest.approx(20 * 4 / 10.0)
    lr = method.defaults.lr * 4 / method.defaults.reference_batch
    assert result.lr_curve[5:] == pytest.approx([lr * lr_multiplier(k, 20, 4) for k in range(5, 20)])
    assert result.lr_curve[:5] == pytest.approx([lr * lr_multiplier(k, 10**6, 2 * 10**5) for k in range(5)])


def test_seconds_budget_with_a_tighter_epoch_limit(tmp_path):
    clock = FakeClock()
    method, backbone = contrastive_method(clock=clock, step_s=0.5)
    result = run(method, backbone, tmp_path, parse_budget("2epochs,10s"), clock=clock)
    assert (result.estimated_total_steps, result.steps, result.stopped_by) == (10, 10, "epochs")
    lr = method.defaults.lr * 4 / method.defaults.reference_batch
    assert result.lr_curve == pytest.approx([lr * lr_multiplier(k, 10, 2) for k in range(10)])


def test_training_stops_when_time_runs_out(tmp_path):
    clock = FakeClock()
    method, backbone = contrastive_method(clock=clock, step_s=[0.5] * 5 + [3.0])
    result = run(method, backbone, tmp_path, Budget(seconds=10.0), clock=clock)
    # K = 20 from the timed steps, but steps 6.. take 3 s: 2.5 + 3 + 3 = 8.5 < 10 <= 11.5 after step 8
    assert (result.estimated_total_steps, result.steps, result.stopped_by) == (20, 8, "seconds")


# --- optimiser, schedule, EMA --------------------------------------------------------------------------------
def test_lr_is_scaled_by_the_global_batch_and_follows_warmup_and_cosine(tmp_path):
    defaults = TrainDefaults(optimizer="sgd", lr=0.1, reference_batch=8, batch_size=4, warmup_fraction=0.2)
    result = run(*contrastive_method(defaults=defaults), tmp_path, Budget(steps=10))
    assert result.lr == pytest.approx(0.05) and result.global_batch == 4 and result.warmup_steps == 2
    assert result.lr_curve == pytest.approx([0.05 * lr_multiplier(k, 10, 2) for k in range(10)])
    assert result.lr_curve[1] == pytest.approx(0.05) and result.lr_curve[-1] < 0.01


@pytest.mark.parametrize("name", ["sgd", "lars", "adamw"])
def test_no_weight_decay_on_biases_and_norms(tmp_path, name):
    encoder = tiny_backbone().encoder
    groups = build_optimizer(list(encoder.parameters()), name, 0.1, 0.5, 0.9).param_groups
    by_decay = {g["weight_decay"]: {id(p) for p in g["params"]} for g in groups}
    assert by_decay[0.5] == {id(encoder.lin.weight)}
    assert by_decay[0.0] == {id(encoder.lin.bias), id(encoder.bn.weight), id(encoder.bn.bias)}


class ZeroLoss(torch.nn.Module):
    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.encoder = backbone.encoder

    def forward(self, views, labels=None):
        return self.encoder.encode(views[0]).sum() * 0.0


def test_only_weights_decay_in_training(tmp_path):
    backbone = tiny_backbone()
    before = {k: v.clone() for k, v in backbone.encoder.named_parameters()}
    method = TinyMethod(ZeroLoss(backbone), TrainDefaults(optimizer="sgd", lr=0.1, weight_decay=0.5,
                                                          reference_batch=4, batch_size=4))
    run(method, backbone, tmp_path, Budget(steps=3))
    after = dict(backbone.encoder.named_parameters())
    assert not torch.equal(after["lin.weight"], before["lin.weight"])
    for name in ("lin.bias", "bn.weight", "bn.bias"):
        assert torch.equal(after[name], before[name]), name


def test_lars_scales_weight_updates_by_the_trust_ratio():
    torch.manual_seed(0)
    w, b = torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(3))
    w.grad, b.grad = torch.randn(3, 2), torch.randn(3)
    w0, b0, lr, wd = w.detach().clone(), b.detach().clone(), 0.5, 0.1
    LARS([{"params": [w], "weight_decay": wd}, {"params": [b], "weight_decay": 0.0}], lr=lr, momentum=0.9).step()
    trust = 0.02 * w0.norm() / (w.grad.norm() + wd * w0.norm() + 1e-8)
    assert torch.allclose(w.detach(), w0 - lr * trust * (w.grad + wd * w0))
    assert torch.allclose(b.detach(), b0 - lr * b.grad)  # biases: plain SGD, no trust ratio


def test_ema_follows_the_optimiser_step_with_the_tau_schedule(tmp_path):
    method, backbone = byol_method()
    objective = method.objective
    seen: list[tuple[dict, dict]] = []

    def on_step(step, total):
        assert total == 9
        seen.append(({k: v.detach().clone() for k, v in objective.online.named_parameters()},
                     {k: v.detach().clone() for k, v in objective.target.named_parameters()}))

    method.on_step = on_step
    result = run(method, backbone, tmp_path, Budget(steps=9))
    seen.append((dict(objective.online.named_parameters()), dict(objective.target.named_parameters())))
    assert result.steps == 9 and len(seen) == 10
    for k in range(9):  # after step k: target_k = tau_k target_{k-1} + (1 - tau_k) online_k (online already stepped)
        tau = ema_tau(k, 9, 0.9)
        online, target = seen[k + 1]
        for name, previous in seen[k][1].items():
            assert torch.equal(target[name], previous.mul(tau).add(online[name], alpha=1 - tau)), (k, name)
    assert all(not p.requires_grad for p in objective.target.parameters())
    assert ema_tau(0, 9, 0.9) == pytest.approx(0.9) and ema_tau(9, 9, 0.9) == pytest.approx(1.0)


def test_ema_update_covers_parameters_and_buffers():
    online, target = tiny_backbone(0).encoder, tiny_backbone(1).encoder
    online.bn.running_mean.fill_(2.0)
    online.bn.num_batches_tracked.fill_(7)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    ema_update(target, online, 0.75)
    for name, value in target.state_dict().items():
        if name.endswith("num_batches_tracked"):
            assert int(value) == 7
        else:
            assert torch.equal(value, before[name].mul(0.75).add(online.state_dict()[name], alpha=0.25)), name


# --- guards and options --------------------------------------------------------------------------------------
def test_non_finite_loss_stops_with_a_clear_error(tmp_path):
    method, backbone = contrastive_method(nan_at=17)
    with pytest.raises(ContractError) as info:
        run(method, backbone, tmp_path, Budget(steps=30))
    assert str(info.value) == ("method 'tiny' produced a non-finite loss (nan) at step 17; lower the lr or check "
                               "the objective")


@pytest.mark.parametrize("use_labels", [False, True])
def test_labels_reach_the_objective_only_when_asked(tmp_path, use_labels):
    method, backbone = contrastive_method()
    run(method, backbone, tmp_path, Budget(steps=2), use_labels=use_labels)
    seen = method.objective.labels_seen
    assert len(seen) == 2
    assert all((y is not None and y.shape == (4,)) if use_labels else y is None for y in seen)


@pytest.mark.parametrize(("precision", "match"), [("fp16", "needs a CUDA device"), ("fp8", "use one of")])
def test_precision_errors(tmp_path, precision, match):
    with pytest.raises(OptionError, match=match):
        run(*contrastive_method(), tmp_path, Budget(steps=1), precision=precision)


def test_objective_without_the_backbone_is_refused(tmp_path):
    method, _ = contrastive_method()
    with pytest.raises(ContractError, match="does not hold the backbone"):
        run(method, tiny_backbone(1), tmp_path, Budget(steps=1))


def test_progress_lines_and_quiet_by_default(tmp_path, capsys):
    lines: list[str] = []
    run(*contrastive_method(), tmp_path, Budget(steps=10), log=lines.append, log_every=5)
    assert [line.split()[1] for line in lines] == ["5/10", "10/10"]
    assert all("loss" in line and "samples/s" in line and "ETA" in line for line in lines)
    run(*contrastive_method(), tmp_path / "quiet", Budget(steps=2))
    assert capsys.readouterr() == ("", "")


def test_callers_rng_is_left_alone(tmp_path):
    method, backbone = contrastive_method()
    torch.manual_seed(123)
    np.random.seed(5)
    expected = torch.get_rng_state(), np.random.get_state()[1].copy()
    run(method, backbone, tmp_path, Budget(steps=3))
    assert torch.equal(torch.get_rng_state(), expected[0]) and np.array_equal(np.random.get_state()[1], expected[1])


def test_worker_processes_are_deterministic(tmp_path):
    weights = []
    for i in range(2):
        method, backbone = contrastive_method()
        run(method, backbone, tmp_path / str(i), Budget(steps=6), num_workers=2)
        weights.append(method.objective.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_bf16_autocast_on_the_cpu_when_asked(tmp_path):
    result = run(*contrastive_method(), tmp_path, Budget(steps=3), precision="bf16")
    assert result.precision == "bf16" and result.steps == 3 and all(math.isfinite(v) for v in result.loss_curve)


def test_views_must_be_tensors(tmp_path):
    method, backbone = contrastive_method()
    method.views = lambda sample: sample  # a numpy array, not a list of tensors
    with pytest.raises(ContractError, match=r"views\(sample\) must return a non-empty list of tensors"):
        run(method, backbone, tmp_path, Budget(steps=1))


def test_the_result_says_how_the_schedule_was_fixed(tmp_path):
    assert run(*contrastive_method(), tmp_path / "a", Budget(steps=3)).estimate == "steps budget: 3 steps"
    result = run(*contrastive_method(), tmp_path / "b", Budget(epochs=2))
    assert result.estimate == "epochs budget: 10 steps (2 x 5 steps)"


def test_progress_every_few_seconds_even_between_step_intervals(tmp_path):
    """Slow steps (3 s each on the clock): a line about every 10 s, not only every ``log_every`` steps."""
    clock, lines = FakeClock(), []
    method, backbone = contrastive_method(clock=clock, step_s=3.0)
    run(method, backbone, tmp_path, Budget(steps=12), log=lines.append, log_every=50, log_every_s=10.0,
        clock=clock)
    steps = [int(line.split()[1].split("/")[0]) for line in lines if line.startswith("step ")]
    assert steps == [4, 8, 12]  # 12 s, 24 s, then the last step
    assert all("ETA" in line and "loss" in line for line in lines if line.startswith("step "))


def test_ctrl_c_saves_a_checkpoint_and_the_same_call_resumes(tmp_path):
    import os
    import signal

    class Interrupting(Contrastive):
        def forward(self, views, labels=None):
            if self.calls == 2:  # during the third step
                os.kill(os.getpid(), signal.SIGINT)
            return super().forward(views, labels)

    backbone = tiny_backbone(0)
    method = TinyMethod(Interrupting(backbone))
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        run(method, backbone, tmp_path, Budget(steps=6), log=lines.append)
    assert "interrupted after step 3: checkpoint saved in" in lines[-1] and "run the same command" in lines[-1]
    method.objective.calls = 10  # no second interruption
    result = run(method, backbone, tmp_path, Budget(steps=6), log=lines.append)
    assert result.resumed_from_step == 3 and result.steps == 6
    uninterrupted = run(*contrastive_method(0), tmp_path / "straight", Budget(steps=6))
    assert result.loss_curve == pytest.approx(uninterrupted.loss_curve)
