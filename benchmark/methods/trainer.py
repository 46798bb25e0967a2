"""The one pretraining loop the core owns: :func:`train` runs any :class:`~benchmark.specs.Method` under a budget.

Contract (what a method can rely on, and what a record can state):

- Data: a ``torch.utils.data.DataLoader`` over ``data``, whose dataset returns ``(method.views(sample),
  label)`` per sample, so augmentation runs in ``num_workers`` worker processes. Epoch ``e``'s order is a
  ``RandomSampler`` drawing from a ``torch.Generator`` seeded from ``(seed, e)`` (under DDP, a
  ``DistributedSampler(shuffle=True, seed=seed)`` at epoch ``e``), cut into full batches (the last partial one
  dropped unless the split is smaller than a batch), so a resumed run continues at the same batch.
  ``steps_per_epoch = len(data) // batch`` per process. Labels reach the objective only with ``use_labels``.
- Schedule: ``K`` steps, the least of the budget's steps and epochs; a seconds budget times the first
  ``timing_steps`` steps of a call (real training steps), then fixes ``K`` from the measured rate (recorded in
  ``estimate``); until then the schedule runs with the provisional ``K`` of the other limits, or 10**6. Training
  also stops when the time is up. Per 0-based step ``k``: ``lr = defaults.lr * global_batch / reference_batch
  * lr_multiplier(k, K, round(warmup_fraction * K))`` (warm-up then cosine), the weight decay's cosine to
  ``defaults.weight_decay_end`` if set (:func:`schedule_weight_decay`), ``method.on_step(k, K)`` if it exists,
  ``objective.before_step(StepInfo(k, K, steps_per_epoch))`` if it exists (:mod:`benchmark.methods.schedule`), the loss (bf16 autocast on CUDA by default; fp16 with a GradScaler if
  asked; fp32 on the CPU unless asked), a finite-loss check (ContractError before any backward), backward, optional clipping to
  ``defaults.grad_clip``, the optimiser step (:func:`~benchmark.runtime.training.build_optimizer`: no weight
  decay on biases and norms), then for every momentum pair ``target = tau_k target + (1 - tau_k) online`` with
  ``tau_k = ema_tau(k, K, defaults.tau)``. Targets are frozen (``requires_grad=False``) and never optimised.
- RNG: the loop runs inside a fork of torch's (and the device's), numpy's and Python's global RNGs, seeded
  with ``seed`` (+ rank); the caller's states come back afterwards.
- Checkpoints (:mod:`benchmark.methods.checkpoint`) every ``checkpoint_every_steps`` steps or
  ``checkpoint_every_s`` seconds and at the end, by rank 0 only. Called again with the same ``workdir`` and
  ``config_digest``, :func:`train` resumes from the last checkpoint; on the CPU with ``num_workers=0`` the final
  weights are bit-identical to an uninterrupted run's. Another digest's checkpoint there is an OptionError.
- DDP: under an initialised process group the objective is wrapped in DistributedDataParallel
  (``find_unused_parameters`` from the method's attribute of that name, default True) and ranks agree on ``K``
  and on stopping; on GPUs BatchNorm layers run as SyncBatchNorm during training (the original layers, which
  share their tensors, are put back afterwards). The global batch is ``batch * world_size``.
- The trained weights stay in the method's modules (``backbone.encoder`` included).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import ContractError, DataError, OptionError
from benchmark.methods import checkpoint as ckpt
from benchmark.methods.checkpoint import rng_state, set_rng_state
from benchmark.methods.progress import Progress, TrainResult, duration
from benchmark.methods.schedule import StepInfo
from benchmark.methods.watch import Watch, Watcher
from benchmark.runtime import distributed as dist
from benchmark.runtime.devices import peak_memory, precision_autocast, resolve_precision
from benchmark.runtime.interrupt import StepInterrupt
from benchmark.runtime.training import (
    OPTIMIZERS,
    EpochBatches,
    ViewsDataset,
    build_optimizer,
    derive_seed,
    ema_tau,
    ema_update,
    fork_rng_devices,
    lr_multiplier,
    optimizer_step,
    own_rng,
    schedule_weight_decay,
    set_lr,
)
from benchmark.specs import Backbone, Budget, Method, Split

PROVISIONAL_STEPS = 10**6


class _Loop:
    """One call of :func:`train`: the modules, optimiser and progress (see the module docstring)."""

    def __init__(self, method: Method, backbone: Backbone, data: Split, budget: Budget, opts: dict[str, Any]):
        self.method, self.budget, self.o = method, budget, opts
        self.name, self.dev = opts["method_name"], torch.device(opts["device"])
        self.precision = resolve_precision(opts["precision"], self.dev)
        self.defaults = method.defaults
        if self.defaults.optimizer not in OPTIMIZERS:
            raise ContractError(f"method '{self.name}': optimizer {self.defaults.optimizer!r} is not one of "
                                f"{', '.join(OPTIMIZERS)}")
        self.objective = method.objective
        if not isinstance(self.objective, torch.nn.Module):
            raise ContractError(f"method '{self.name}': objective must be a torch.nn.Module")
        self._plan(data)
        self._modules(backbone)
        self.dataset = ViewsDataset(data, method.views, self.name)
        watch = opts["watch"]
        self.watcher = None if watch is None else Watcher(watch, method, backbone, data, self.dev, self.name,
                                                          opts["use_labels"])
        self.progress = Progress()
        if budget.seconds is None:  # K is known now (a seconds budget fixes it after timing)
            self.progress.total, self.progress.limit = self.cap, self.cap_limit
            how = f" ({budget.epochs} x {self.per_epoch} steps)" if self.cap_limit == "epochs" else ""
            self.progress.estimate = f"{self.cap_limit} budget: {self.cap} steps{how}"

    def _plan(self, data: Split) -> None:
        world = dist.world_size()
        per_rank = len(data) // world
        if per_rank < 1:
            raise DataError(f"method '{self.name}': {len(data)} training samples cannot feed {world} processes")
        wanted = self.o["batch_size"] or self.defaults.batch_size
        if not isinstance(wanted, int) or wanted < 1:
            raise OptionError(f"batch_size {wanted!r}: use a whole number >= 1")
        self.batch = min(wanted, per_rank)
        self.per_epoch = max(1, per_rank // self.batch)
        self.n, self.world, self.global_batch = len(data), world, self.batch * world
        self.lr = self.defaults.lr * self.global_batch / self.defaults.reference_batch
        caps = {"steps": self.budget.steps, "epochs": None if self.budget.epochs is None
                else self.budget.epochs * self.per_epoch}
        known = {k: v for k, v in caps.items() if v is not None}
        self.cap_limit = min(known, key=lambda k: known[k]) if known else ""
        self.cap = known.get(self.cap_limit)

    def _modules(self, backbone: Backbone) -> None:
        obj_params = {id(p) for p in self.objective.parameters()}
        enc = backbone.encoder
        if isinstance(enc, torch.nn.Module) and not {id(p) for p in enc.parameters()} <= obj_params:
            raise ContractError(f"method '{self.name}': the objective does not hold the backbone's parameters, so "
                                "training would not change the backbone (keep backbone.encoder in the objective)")
        inside = {id(m) for m in self.objective.modules()}
        self.pairs = list(self.method.momentum_pairs)
        self.outside = [t for _, t in self.pairs if id(t) not in inside]
        target_ids = set()
        for _, target in self.pairs:
            for p in target.parameters():
                p.requires_grad_(False)
                target_ids.add(id(p))
        self.objective.to(self.dev)
        for target in self.outside:
            target.to(self.dev)
        self.params = [p for p in self.objective.parameters() if p.requires_grad and id(p) not in target_ids]
        self.optimizer = build_optimizer(self.params, self.defaults.optimizer, self.lr,
                                         self.defaults.weight_decay, self.defaults.momentum,
                                         self.defaults.betas)
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.model: torch.nn.Module = self.objective
        self.batchnorms: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
        if dist.initialized():
            if self.dev.type == "cuda":  # SyncBatchNorm shares the layers' parameters and buffers
                self.batchnorms = [(parent, name, child) for parent in self.objective.modules()
                                   for name, child in parent.named_children()
                                   if isinstance(child, torch.nn.modules.batchnorm._BatchNorm)]
                torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.objective)
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.objective, device_ids=fork_rng_devices(self.dev) or None,
                find_unused_parameters=bool(getattr(self.method, "find_unused_parameters", True)))

    def restore_batchnorms(self) -> None:
        """Put the original BatchNorm layers back in place of their SyncBatchNorm twins (same tensors)."""
        for parent, name, layer in self.batchnorms:
            layer.train(getattr(parent, name).training)
            setattr(parent, name, layer)

    # --- checkpoints -------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"objective": self.objective.state_dict(),
                "targets": [t.state_dict() for t in self.outside],
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "rng": rng_state(self.dev)}

    def save(self, elapsed: float, finished: bool) -> None:
        if not dist.is_main():
            return
        p = self.progress
        meta = {"step": p.step, "epoch": p.step // self.per_epoch, "position": p.step % self.per_epoch,
                "steps_per_epoch": self.per_epoch, "total_steps": p.total, "limit": p.limit,
                "estimate": p.estimate, "elapsed_s": elapsed, "seed": self.o["seed"], "batch_size": self.batch,
                "world_size": self.world, "finished": finished, "stopped_by": p.stopped_by,
                "loss_curve": p.loss_curve, "lr_curve": p.lr_curve, "watch_curve": p.watch_curve,
                "collapse": p.collapse}
        ckpt.save(self.o["workdir"], self.o["config_digest"], meta, self.state())

    def restore(self, meta: dict[str, Any], state: dict[str, Any]) -> None:
        if meta.get("batch_size") != self.batch or meta.get("world_size") != self.world:
            raise OptionError(f"{self.o['workdir']}: its checkpoint was trained with batch {meta.get('batch_size')} "
                              f"on {meta.get('world_size')} processes; resume with the same, or use another "
                              "--out/workdir")
        self.objective.load_state_dict(state["objective"])
        for target, saved in zip(self.outside, state["targets"], strict=True):
            target.load_state_dict(saved)
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler is not None and state["scaler"] is not None:
            self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], self.dev)
        if dist.rank() > 0:  # rank 0's RNG was saved: the others draw their own, still deterministic
            torch.manual_seed(derive_seed(self.o["seed"], dist.rank(), meta["step"], 2))
        self.progress = Progress(meta["step"], meta["total_steps"], meta["limit"], meta["estimate"],
                                  float(meta["elapsed_s"]), list(meta["loss_curve"]), list(meta["lr_curve"]),
                                  meta["stopped_by"], list(meta.get("watch_curve", [])), meta.get("collapse", ""))

    # --- one step ------------------------------------------------------------------------------------------
    def schedule(self) -> int:
        """The schedule's K: fixed, or provisional while a seconds budget is still timing steps."""
        p = self.progress
        return p.total if p.total is not None else (self.cap or PROVISIONAL_STEPS)

    def step(self, views: list[torch.Tensor], labels: torch.Tensor) -> None:
        k, total = self.progress.step, self.schedule()
        set_lr(self.optimizer, lr_multiplier(k, total, round(self.defaults.warmup_fraction * total)))
        schedule_weight_decay(self.optimizer, k, total, self.defaults.weight_decay, self.defaults.weight_decay_end)
        hook = getattr(self.method, "on_step", None)
        if callable(hook):
            hook(k, total)
        before = getattr(self.objective, "before_step", None)
        if callable(before):
            before(StepInfo(k, total, self.per_epoch))
        views = [v.to(self.dev, non_blocking=True) for v in views]
        y = labels.to(self.dev, non_blocking=True) if self.o["use_labels"] else None
        with precision_autocast(self.dev, self.precision):
            loss = self.model(views, y)
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ContractError(f"method '{self.name}': objective(views, labels) must return a scalar tensor")
        if not loss.requires_grad:
            raise ContractError(f"method '{self.name}': objective(views, labels) returned a loss without a gradient "
                                "(detached, computed under no_grad, or from no trainable parameter); return the "
                                "loss the optimiser should minimise")
        value = dist.mean_float(float(loss.detach().float()), self.dev)
        if not math.isfinite(value):
            raise ContractError(f"method '{self.name}' produced a non-finite loss ({value}) at step {k + 1}; "
                                "lower the lr or check the objective")
        if self.scaler is None:
            optimizer_step(loss, self.optimizer, self.params, self.defaults.grad_clip)
        else:
            self._scaled_step(loss)
        tau = ema_tau(k, total, self.defaults.tau)
        for online, target in self.pairs:
            ema_update(target, online, tau)
        self.progress.loss_curve.append(value)
        self.progress.lr_curve.append(float(self.optimizer.param_groups[0]["lr"]))
        self.progress.step += 1

    def _scaled_step(self, loss: torch.Tensor) -> None:
        assert self.scaler is not None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.defaults.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.defaults.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def fix_total(self, rate: float, elapsed: float) -> None:
        """Fix K from the measured steps/s once the timing steps are done (rank 0's numbers on every rank)."""
        p, seconds = self.progress, float(self.budget.seconds or 0.0)
        estimate = p.step + int(max(0.0, seconds - elapsed) * rate)
        estimate = int(dist.broadcast_float(float(estimate), self.dev))
        if self.cap is not None and self.cap <= estimate:
            p.total, p.limit = self.cap, self.cap_limit
        else:
            p.total, p.limit = max(p.step, estimate), "seconds"
        p.estimate = (f"timed {self.o['timing_steps']} steps at {rate:.3g} steps/s: {estimate} steps fit in "
                      f"{seconds:g}s; K = {p.total} ({p.limit})")

    # --- the loop ------------------------------------------------------------------------------------------
    def loader(self) -> torch.utils.data.DataLoader[Any]:
        """The batches from the current step on (its generator only seeds the workers)."""
        start = self.progress.step
        gen = torch.Generator().manual_seed(derive_seed(self.o["seed"], dist.rank(), start, 1))
        return torch.utils.data.DataLoader(
            self.dataset, batch_sampler=EpochBatches(self.n, self.batch, self.per_epoch, self.o["seed"], start),
            num_workers=self.o["num_workers"], pin_memory=self.dev.type == "cuda", generator=gen)

    def stop_reason(self, elapsed: float, before_start: bool = False) -> str | None:
        """Why training ends after the step just done, or None; every rank gets rank 0's answer on time."""
        p = self.progress
        if before_start and p.step == 0:
            return None
        if p.total is not None and p.step >= p.total:
            return p.limit
        if p.total is None and self.cap is not None and p.step >= self.cap:
            return self.cap_limit
        if self.budget.seconds is not None:
            out = dist.broadcast_float(1.0 if elapsed >= self.budget.seconds else 0.0, self.dev)
            if out > 0:
                return "seconds"
        if self.o["pause_at_step"] is not None and p.step >= self.o["pause_at_step"]:
            return "paused"
        return None

    def run(self) -> float:
        """Train until a limit; returns this call's training seconds."""
        clock, p, o = self.o["clock"], self.progress, self.o
        p.stopped_by = self.stop_reason(p.elapsed_s, before_start=True)
        if p.stopped_by is not None:  # a resume after the last step's time or the pause: nothing to do
            return 0.0
        self.model.train(True)
        start = last_save = clock()
        self.last_report = 0.0
        first_step_done: float | None = None
        timing = p.total is None and self.budget.seconds is not None
        interrupt = StepInterrupt()
        for done_here, (views, labels) in enumerate(self.loader(), start=1):
            with interrupt:  # Ctrl-C lands between steps, never inside an optimiser update
                self.step(views, labels)
            now = clock()
            if interrupt.pressed:
                self.save(p.elapsed_s + now - start, finished=False)
                self.log(f"interrupted after step {p.step}: checkpoint saved in {o['workdir']}; run the same "
                         "command again to resume from it")
                raise KeyboardInterrupt
            if timing and done_here == 1:
                first_step_done = now
            if timing and done_here >= max(2, o["timing_steps"]) and first_step_done is not None:
                self.fix_total((done_here - 1) / max(now - first_step_done, 1e-9), p.elapsed_s + now - start)
                timing = False
                self.log(f"schedule: {p.estimate}")
            p.stopped_by = self.stop_reason(p.elapsed_s + now - start)
            self.watch_step()
            self.report(done_here, now - start)
            if p.stopped_by is not None:
                break
            every, every_s = o["checkpoint_every_steps"], o["checkpoint_every_s"]
            if (every and p.step % every == 0) or (every_s is not None and now - last_save >= every_s):
                self.save(p.elapsed_s + now - start, finished=False)
                last_save = clock()
        return clock() - start

    def watch_step(self) -> None:
        """The online probe and collapse monitors after every ``watch.every`` steps and the last (watch.py)."""
        p, final = self.progress, self.progress.stopped_by not in (None, "paused")
        if self.watcher is None or not (final or p.step % self.watcher.watch.every == 0):
            return
        point, collapse = self.watcher.check(p.step, self.objective, self.log)
        point["lr"] = p.lr_curve[-1]  # the lr of the step just done: the curve alone draws every panel of the run
        p.watch_curve.append(point)
        if dist.any_rank(bool(collapse), self.dev) and not p.collapse:
            p.collapse = collapse or f"method '{self.name}': collapse at step {p.step} on another rank"
            stop = self.watcher.watch.stop_on_collapse and not final
            if dist.is_main():
                print(f"warning: {p.collapse}" + ("; stopping (--stop-on-collapse)" if stop else ""),
                      file=sys.stderr)
            if stop:
                p.stopped_by = "collapse"

    def log(self, line: str) -> None:
        if self.o["log"] is not None and dist.is_main():
            self.o["log"](line)

    def report(self, done_here: int, seconds: float) -> None:
        p, total = self.progress, self.schedule()
        every_s = self.o["log_every_s"]
        due = (p.step % self.o["log_every"] == 0 or p.stopped_by is not None
               or (every_s is not None and seconds - self.last_report >= every_s))
        if self.o["log"] is None or not due:
            return
        self.last_report = seconds
        rate = done_here / max(seconds, 1e-9)
        shown = f"{total}" if p.total is not None or self.cap else "?"
        eta = duration((total - p.step) / rate) if shown != "?" else "?"
        self.log(f"step {p.step}/{shown}  loss {p.loss_curve[-1]:.4f}  lr {p.lr_curve[-1]:.3g}  "
                 f"{rate * self.global_batch:.0f} samples/s  ETA {eta}")

    def result(self, resumed: int | None) -> TrainResult:
        p = self.progress
        seconds, watched = p.elapsed_s, float(sum(point.get("seconds", 0.0) for point in p.watch_curve))
        return TrainResult(
            steps=p.step, epochs=p.step / self.per_epoch, seconds=seconds,
            samples_per_s=p.step * self.global_batch / seconds if seconds > 0 else 0.0, watch_seconds=watched,
            train_samples_per_s=p.step * self.global_batch / (seconds - watched) if seconds > watched else 0.0,
            peak_memory_bytes=peak_memory(self.dev)[0], loss_curve=list(p.loss_curve), lr_curve=list(p.lr_curve),
            estimated_total_steps=self.schedule() if p.total is not None or self.cap else p.step,
            stopped_by=p.stopped_by or "", resumed_from_step=resumed, estimate=p.estimate,
            steps_per_epoch=self.per_epoch, batch_size=self.batch, global_batch=self.global_batch,
            world_size=self.world, lr=self.lr, warmup_steps=round(self.defaults.warmup_fraction * self.schedule()),
            precision=self.precision, checkpoint=str(Path(self.o["workdir"]) / ckpt.CHECKPOINT),
            watch_curve=list(p.watch_curve), collapse=p.collapse)


def train(method: Method, backbone: Backbone, data: Split, *, budget: Budget, workdir: Path | str,
          config_digest: str, device: str | torch.device = "cpu", seed: int = 0, batch_size: int | None = None,
          precision: str = "auto", checkpoint_every_steps: int | None = None,
          checkpoint_every_s: float | None = 60.0,
          num_workers: int = 0, log: Callable[[str], None] | None = None, use_labels: bool = False,
          method_name: str = "method", clock: Callable[[], float] = time.perf_counter,
          pause_at_step: int | None = None, timing_steps: int = 5, log_every: int = 50,
          watch: Watch | None = None, log_every_s: float | None = 10.0) -> TrainResult:
    """Pretrain ``method`` (built around ``backbone``) on ``data`` under ``budget``; see the module docstring.

    ``workdir`` holds the checkpoints (created when missing); a checkpoint of ``config_digest`` there is resumed,
    one of another digest is refused (OptionError, nothing written). ``batch_size`` per process overrides
    ``method.defaults.batch_size``. ``precision``: ``auto`` (bf16 on CUDA, fp32 on the CPU), ``fp32``, ``bf16`` or
    ``fp16`` (CUDA, with a GradScaler). ``log(line)`` receives progress lines (step/total, loss, lr, samples/s,
    ETA) every ``log_every`` steps and at least every ``log_every_s`` seconds. Ctrl-C (SIGINT in the main
    thread) ends training after the current step with a checkpoint, and raises KeyboardInterrupt; rerunning
    resumes from it. ``clock`` measures the seconds budget, the timing and checkpoint
    intervals (inject a fake one in tests). ``pause_at_step`` ends this call after that many steps in total, with
    a checkpoint (``stopped_by='paused'``), as an interruption would. ``watch``: the online probe and collapse
    monitors (:mod:`benchmark.methods.watch`; ``stopped_by='collapse'`` when one stops the run). The trained
    weights are left in the method's modules, which also hold the final checkpoint's state.
    """
    if not isinstance(budget, Budget):
        raise OptionError(f"budget must be a Budget (see benchmark.methods.budget.parse_budget), got {budget!r}")
    if len(data) < 1:
        raise DataError(f"method '{method_name}': the training split is empty")
    _need_count("checkpoint_every_steps", checkpoint_every_steps, 1, optional=True)
    _need_count("pause_at_step", pause_at_step, 1, optional=True)
    _need_count("timing_steps", timing_steps, 2)
    _need_count("log_every", log_every, 1)
    meta = ckpt.check_workdir(workdir, config_digest)
    opts = {"workdir": Path(workdir), "config_digest": config_digest, "device": device, "seed": seed,
            "batch_size": batch_size, "precision": precision, "checkpoint_every_steps": checkpoint_every_steps,
            "checkpoint_every_s": checkpoint_every_s, "num_workers": num_workers, "log": log,
            "use_labels": use_labels, "method_name": method_name, "clock": clock, "pause_at_step": pause_at_step,
            "timing_steps": timing_steps, "log_every": log_every, "watch": watch, "log_every_s": log_every_s}
    loop = _Loop(method, backbone, data, budget, opts)
    if loop.dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(loop.dev)
    try:
        with own_rng(loop.dev, seed + dist.rank()):
            resumed = None if meta is None else _resume(loop, workdir)
            if meta is None or not meta.get("finished"):
                loop.progress.stopped_by = None
                loop.progress.elapsed_s += loop.run()
                loop.save(loop.progress.elapsed_s, finished=loop.progress.stopped_by != "paused")
    finally:
        loop.restore_batchnorms()
    if dist.initialized():
        torch.distributed.barrier()
    return loop.result(resumed)


def _resume(loop: _Loop, workdir: Path | str) -> int:
    """Load ``workdir``'s checkpoint into ``loop``; returns the step it was taken at."""
    loaded = ckpt.load(workdir)
    assert loaded is not None
    try:
        loop.restore(*loaded)
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        if isinstance(exc, (OptionError, ContractError)):
            raise
        what = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0][:200]
        raise DataError(f"{Path(workdir) / ckpt.CHECKPOINT}: a damaged or incomplete checkpoint ({what}); delete "
                        f"{workdir} to start over") from None
    done = "training already finished" if loaded[0].get("finished") else "resuming"
    loop.log(f"{workdir}: {done} at step {loop.progress.step}")
    return loop.progress.step


def _need_count(name: str, value: Any, low: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise OptionError(f"{name} {value!r}: use a whole number >= {low}{', or None' if optional else ''}")
