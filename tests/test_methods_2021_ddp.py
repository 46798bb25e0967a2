"""The 2021 methods on two CPU ranks (gloo on 127.0.0.1).

Loss level: MoCo v3 (keys gathered, positives offset by the rank), Barlow Twins (cross-correlation over the global
batch) and DINO (per-rank cross-entropy, centre over the global batch) give, as the mean of the ranks' losses and
the DDP-averaged gradients, exactly the one-process loss and gradient on the whole batch. Loop level: dino and
mocov3 train under the core loop's DDP with identical weights (EMA targets and DINO's centre included; BatchNorm
running statistics are per rank on CPU) on both ranks.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from test_methods_builtin import images, tiny_backbone

from benchmark.methods import dino, mocov3
from benchmark.methods.recent_losses import barlow_twins_loss, dino_center, dino_loss, mocov3_loss
from benchmark.methods.trainer import train
from benchmark.specs import Budget, Split
from benchmark.testing import gloo_group

WORLD, N, D = 2, 8, 6
ATOL = 1e-6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    names = ("q1", "q2", "k1", "k2", "z1", "z2", "s0", "s1", "s2", "t0", "t1")
    return {name: torch.randn(N, D, generator=g) for name in names} | {"center": torch.randn(1, D, generator=g) * 0.1}


def _losses(t: dict[str, torch.Tensor], part: slice) -> dict[str, tuple[torch.Tensor, list[torch.Tensor]]]:
    """Each loss on rows ``part`` with its gradient w.r.t. the trained inputs."""
    out = {}
    leaves = {k: v[part].clone().requires_grad_(True) for k, v in t.items() if k != "center"}
    cases = {"mocov3": (lambda: mocov3_loss(leaves["q1"], leaves["q2"], leaves["k1"], leaves["k2"], 0.2), ("q1", "q2")),
             "barlow": (lambda: barlow_twins_loss(leaves["z1"], leaves["z2"]), ("z1", "z2")),
             "dino": (lambda: dino_loss([leaves["s0"], leaves["s1"], leaves["s2"]], [leaves["t0"], leaves["t1"]],
                                        t["center"], 0.1, 0.05), ("s0", "s1", "s2"))}
    for name, (fn, wrt) in cases.items():
        loss = fn()
        grads = torch.autograd.grad(loss, [leaves[k] for k in wrt])
        out[name] = (loss.detach(), list(grads))
    out["center"] = (dino_center(t["center"], [leaves["t0"].detach(), leaves["t1"].detach()], 0.9), [])
    return out


def _loss_worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    with gloo_group(init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD):
        half = N // WORLD
        results = _losses(_tensors(), slice(rank * half, (rank + 1) * half))
        torch.save(results, f"{out}.{rank}")


@pytest.mark.slow
def test_losses_over_two_gloo_ranks_equal_one_process_on_the_global_batch(tmp_path):
    mp.spawn(_loss_worker, args=(_free_port(), str(tmp_path / "out")), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"out.{r}") for r in range(WORLD)]
    whole = _losses(_tensors(), slice(0, N))
    for name in ("mocov3", "barlow", "dino"):
        loss, grads = whole[name]
        assert float(sum(r[name][0] for r in ranks) / WORLD) == pytest.approx(float(loss), abs=ATOL), name
        for i, grad in enumerate(grads):  # DDP averages each rank's gradient of its own rows
            averaged = torch.cat([r[name][1][i] for r in ranks]) / WORLD
            assert torch.allclose(averaged, grad, atol=ATOL), (name, i)
    for r in ranks:
        assert torch.allclose(r["center"][0], whole["center"][0], atol=ATOL)  # the centre of the global batch


SMALL = {"dino": (dino, {"out_dim": 32, "hidden": 32, "bottleneck": 16, "local_crops": 2}),
         "mocov3": (mocov3, {"hidden": 16, "dim": 8})}


def _train_worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    with gloo_group(init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD):
        for name, (module, options) in SMALL.items():
            torch.manual_seed(rank)  # different inits: DDP starts every rank from rank 0's
            backbone = tiny_backbone(seed=rank)
            method = module.build(backbone, **options)
            data = Split(images(16, seed=1), [i % 2 for i in range(16)])
            result = train(method, backbone, data, budget=Budget(steps=3), workdir=Path(out) / name,
                           config_digest=name, batch_size=4, checkpoint_every_steps=2, method_name=name)
            state = {k: v.detach().contiguous().clone() for k, v in method.objective.state_dict().items()}
            save_file(state, str(Path(out) / f"{name}.rank{rank}.safetensors"))
            (Path(out) / f"{name}.rank{rank}.json").write_text(json.dumps(
                {"losses": result.loss_curve, "world": result.world_size, "global_batch": result.global_batch}))


@pytest.mark.slow
def test_dino_and_mocov3_train_in_step_on_two_ranks(tmp_path):
    mp.spawn(_train_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    for name in SMALL:
        results = [json.loads((tmp_path / f"{name}.rank{r}.json").read_text()) for r in range(WORLD)]
        assert results[0] == results[1] and results[0]["world"] == 2 and results[0]["global_batch"] == 8
        weights = [load_file(str(tmp_path / f"{name}.rank{r}.safetensors")) for r in range(WORLD)]
        assert weights[0].keys() == weights[1].keys()
        for key in weights[0]:  # BatchNorm running statistics stay per rank on CPU (no SyncBatchNorm there)
            if "running_" not in key and "num_batches" not in key:
                assert torch.equal(weights[0][key], weights[1][key]), (name, key)
        if name == "dino":
            assert weights[0]["center"].abs().sum() > 0  # the centre moved, identically on both ranks
