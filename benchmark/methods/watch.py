"""What a pretraining run is watched with while it trains: an online probe and label-free collapse monitors.

Contract (:class:`Watch` configures it; the loop in :mod:`benchmark.methods.trainer` calls :meth:`Watcher.check`
after every ``every`` steps and after the last step):

- Online probe: a fixed, seeded subset of the training split (``probe_size`` samples, labelled) and a disjoint
  held-out subset (``heldout_size``) are chosen once. At each check the backbone encodes both, unaugmented
  (:func:`~benchmark.methods.views.plain_view`), in eval mode without gradients; a kNN classifier (cosine,
  k = ``knn_k``, :func:`benchmark.protocols.knn.knn_classify`) and a logistic regression are fitted on the probe
  features and scored on the held-out ones. The regression follows the ``linear`` protocol's own rule
  (:func:`benchmark.protocols.linear.evaluate_linear` with its defaults, read from
  :data:`~benchmark.protocols.linear.LINEAR_DEFAULTS`): standardised features, C chosen from its Cs on a seeded
  stratified 20% of the probe subset, then refit on all of it; ``C`` fixes it instead. So the online number differs from the offline one only by the data it
  sees. Labels never reach the objective. ``--eval`` at the end remains the reference.
- Collapse monitors on a fixed batch (the first ``monitor_size`` held-out samples): RankMe (Garrido et al., 2023,
  "RankMe: Assessing the Downstream Performance of Pretrained Self-Supervised Representations by Their Rank":
  ``exp(entropy(sigma / ||sigma||_1 + 1e-7))`` over the embeddings' singular values; k equal non-zero singular
  values give k), the mean per-dimension standard deviation of the L2-normalised embeddings (about 1/sqrt(d) when
  spread out, 0 when collapsed), and the objective's loss on fixed views of that batch (eval mode, no gradients).
  A check is a collapse when RankMe < ``min_rankme`` or the std < ``min_std_ratio / sqrt(d)``; the watcher warns
  naming the step, and with ``stop_on_collapse`` the loop stops there (``stopped_by='collapse'``).
- Every check runs inside a fork of torch's RNG (and the device's), so a watched run trains bit-identically to an
  unwatched one; modules go back to their train/eval mode afterwards. Under DDP every rank runs the checks (the
  objective's loss may gather), and rank 0's log says so. Each check is one dict of the curve (step, knn, linear,
  probe_n, heldout_n, probe_C, rankme, std, loss, and ``seconds``: the check's own wall time, so that a reader
  can tell training throughput from the watch's cost), kept in the checkpoint and in the run's result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmark.errors import OptionError
from benchmark.methods.views import plain_view
from benchmark.runtime.training import fork_rng_devices
from benchmark.specs import Backbone, Method, Split

__all__ = ["Watch", "Watcher", "effective_rank", "normalized_std"]


@dataclass(frozen=True)
class Watch:
    """How a run is watched: checks every ``every`` steps (and after the last), an online probe when ``probe``,
    collapse monitors always, stopping at a collapse when ``stop_on_collapse``. ``C`` None: the probe's C is
    chosen at each check as the linear protocol chooses it."""

    every: int = 100
    probe: bool = True
    probe_size: int = 1000
    heldout_size: int = 500
    monitor_size: int = 256
    knn_k: int = 20
    C: float | None = None
    min_rankme: float = 1.2
    min_std_ratio: float = 0.02
    stop_on_collapse: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("every", "probe_size", "heldout_size", "monitor_size", "knn_k"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise OptionError(f"watch {name} {value!r}: use a whole number >= 1")
        if self.C is not None and not self.C > 0:
            raise OptionError(f"watch C {self.C!r}: use a number > 0, or None to choose it as the linear protocol does")


def watch_from_flags(probe_every: int | None, stop_on_collapse: bool, seed: int,
                     probe_size: int | None = None) -> Watch | None:
    """The Watch of ``repbench pretrain --probe-every N [--probe-size M] [--stop-on-collapse]`` (None when
    neither --probe-every nor --stop-on-collapse is given: the run is not watched); monitors every 50 steps when
    only --stop-on-collapse is given. ``--probe-size M``: M labelled probe samples and M // 2 held-out ones
    (default 1,000 and 500)."""
    if probe_size is not None and probe_every is None:
        raise OptionError("--probe-size needs --probe-every: the online probe runs only when asked")
    if probe_every is None and not stop_on_collapse:
        return None
    if probe_every is not None and probe_every < 1:
        raise OptionError(f"--probe-every {probe_every}: use a whole number of steps >= 1")
    if probe_size is not None and probe_size < 2:
        raise OptionError(f"--probe-size {probe_size}: use a whole number of samples >= 2")
    sizes = {} if probe_size is None else {"probe_size": probe_size, "heldout_size": probe_size // 2}
    return Watch(every=probe_every or 50, probe=probe_every is not None, stop_on_collapse=stop_on_collapse,
                 seed=seed, **sizes)


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> float:
    """RankMe of embeddings ``z`` (N, D): ``exp(-sum p log p)`` with ``p = sigma / ||sigma||_1 + eps``."""
    sigma = torch.linalg.svdvals(z.double())
    if float(sigma.sum()) == 0.0:
        return 0.0
    p = sigma / sigma.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


def normalized_std(z: torch.Tensor) -> float:
    """The mean over dimensions of the per-dimension standard deviation of the L2-normalised rows of ``z``."""
    unit = torch.nn.functional.normalize(z.double(), dim=1)
    return float(unit.std(dim=0, unbiased=False).mean())


class Watcher:
    """The fixed subsets and batch of one run, and the checks over them (see the module docstring)."""

    def __init__(self, watch: Watch, method: Method, backbone: Backbone, data: Split, device: torch.device,
                 name: str, use_labels: bool = False) -> None:
        self.watch, self.method, self.backbone, self.dev, self.name = watch, method, backbone, device, name
        self.use_labels = use_labels
        rng = np.random.default_rng(watch.seed)
        order = rng.permutation(len(data))
        heldout = min(watch.heldout_size, max(1, len(data) // 3))
        self.heldout_idx = order[:heldout]
        self.probe_idx = order[heldout:heldout + watch.probe_size]
        self.labels = np.asarray(data.labels)
        self.samples = data.samples
        view = plain_view(backbone)
        monitor_idx = self.heldout_idx[:watch.monitor_size]
        self.monitor_y = torch.as_tensor(self.labels[monitor_idx])
        self.monitor_x = torch.stack([view(data.samples[i]) for i in monitor_idx])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(watch.seed)
            per_sample = [method.views(data.samples[i]) for i in monitor_idx]
        self.monitor_views = [torch.stack(v) for v in zip(*per_sample, strict=True)]
        self.view = view
        self.warned = False

    def _encode(self, indices: np.ndarray, batch: int = 256) -> np.ndarray:
        out = []
        for start in range(0, len(indices), batch):
            x = torch.stack([self.view(self.samples[i]) for i in indices[start:start + batch]]).to(self.dev)
            out.append(self.backbone.encoder.encode(x).detach().float().cpu())
        return torch.cat(out).numpy()

    def _probe(self) -> dict[str, float]:
        from benchmark.protocols.linear import LINEAR_DEFAULTS as LIN
        from benchmark.protocols.logreg import carve_val, fit_logreg, sweep_C
        from benchmark.protocols.neighbors import knn_classify

        if len(self.probe_idx) < 2 or len(np.unique(self.labels[self.probe_idx])) < 2:
            return {}
        train_x, test_x = self._encode(self.probe_idx), self._encode(self.heldout_idx)
        train_y, test_y = self.labels[self.probe_idx], self.labels[self.heldout_idx]
        k = min(self.watch.knn_k, len(train_y))
        knn = knn_classify(train_x, train_y, test_x, [k], num_classes=int(self.labels.max()) + 1)
        if self.watch.C is None and len(train_y) >= 10:  # the linear protocol's own defaults, read from it
            fit, val, _ = carve_val(train_y, LIN["val_fraction"], self.watch.seed)
            sweep = sweep_C(train_x[fit], train_y[fit], train_x[val], train_y[val], LIN["Cs"],
                            patience=LIN["patience"], standardize=LIN["standardize"], max_iter=LIN["max_iter"],
                            tol=LIN["tol"], device=str(self.dev))  # on the run's device, as offline on the task's
            linear, C = sweep.model, sweep.C
        else:
            C = 1.0 if self.watch.C is None else self.watch.C  # under 10 probe samples: no val split to carve
            linear = fit_logreg(train_x, train_y, C, device=str(self.dev))
        return {"knn": float(np.mean(knn.predictions[k] == test_y)),  # with the subsets' sizes: a reader of the
                "linear": float(np.mean(linear.predict(test_x) == test_y)),  # record can put an interval on them
                "probe_n": len(train_y), "heldout_n": len(test_y), "probe_C": float(C)}

    def _monitors(self, model: Any) -> dict[str, float]:
        z = self.backbone.encoder.encode(self.monitor_x.to(self.dev)).float()
        views = [v.to(self.dev) for v in self.monitor_views]
        loss = model(views, self.monitor_y.to(self.dev) if self.use_labels else None)  # labels: supervised only
        return {"rankme": effective_rank(z), "std": normalized_std(z), "loss": float(loss.detach().float())}

    def check(self, step: int, objective: torch.nn.Module, log: Callable[[str], None]) -> tuple[dict[str, Any], str]:
        """One check after ``step`` steps: (the curve point, a collapse message or ''); ``log`` gets one line."""
        modes = {m: m.training for m in objective.modules()}
        start = time.perf_counter()
        try:
            with torch.random.fork_rng(devices=fork_rng_devices(self.dev)), torch.no_grad():
                objective.eval()
                point: dict[str, Any] = {"step": step, **self._monitors(objective)}
                if self.watch.probe:
                    point.update(self._probe())
        finally:
            for module, mode in modes.items():
                module.training = mode
        point["seconds"] = time.perf_counter() - start
        width = int(self.backbone.embed_dim)
        why = ""
        if point["rankme"] < self.watch.min_rankme:
            why = f"RankMe {point['rankme']:.3g} < {self.watch.min_rankme:g}"
        elif point["std"] < self.watch.min_std_ratio / math.sqrt(width):
            why = (f"std of the normalised embeddings {point['std']:.3g} < {self.watch.min_std_ratio:g}/sqrt({width})"
                   f" = {self.watch.min_std_ratio / math.sqrt(width):.3g}")
        shown = "  ".join(f"{k} {v:.4g}" for k, v in point.items() if k not in ("step", "seconds"))
        log(f"watch at step {step}: {shown}")
        return point, f"method '{self.name}': collapse at step {step}: {why}" if why else ""
