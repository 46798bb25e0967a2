"""Two CPU ranks (gloo on 127.0.0.1): gather() makes a contrastive loss over the global batch, with the
gradients of one process on the whole batch; the trainer under DDP keeps both ranks' weights identical."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from test_trainer import contrastive_method, info_nce, tiny_data

from benchmark.methods.trainer import train
from benchmark.runtime import distributed as dist
from benchmark.specs import Budget
from benchmark.testing import gloo_group

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _gather_matches_one_process(rank: int) -> None:
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    whole1, whole2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    info_nce(whole1, whole2).backward()
    part = slice(rank * 4, rank * 4 + 4)  # batch A on rank 0, batch B on rank 1
    local1, local2 = z1[part].clone().requires_grad_(), z2[part].clone().requires_grad_()
    loss = info_nce(dist.gather(local1), dist.gather(local2))
    assert dist.gather(local1).shape == (8, 5)
    assert torch.allclose(loss, info_nce(z1, z2), atol=1e-6), (loss, info_nce(z1, z2))
    loss.backward()
    for local, whole in ((local1, whole1), (local2, whole2)):
        assert local.grad is not None and whole.grad is not None
        grad = local.grad / WORLD  # what DDP's gradient averaging makes of it
        assert torch.allclose(grad, whole.grad[part], atol=1e-6)


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    with gloo_group(init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD):
        assert (dist.rank(), dist.world_size(), dist.is_main()) == (rank, WORLD, rank == 0)
        _gather_matches_one_process(rank)
        method, backbone = contrastive_method(seed=rank)  # different inits: DDP starts every rank from rank 0's
        result = train(method, backbone, tiny_data(24), budget=Budget(steps=5), workdir=Path(out) / "work",
                       config_digest="ddp", checkpoint_every_steps=2, method_name="tiny")
        params = {k: v.detach().contiguous() for k, v in method.objective.named_parameters()}
        save_file(params, str(Path(out) / f"rank{rank}.safetensors"))
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(
            {"steps": result.steps, "global_batch": result.global_batch, "lr": result.lr,
             "losses": result.loss_curve, "world": result.world_size, "per_epoch": result.steps_per_epoch}))


@pytest.mark.slow
def test_two_ranks_gather_and_train_in_step(tmp_path):
    assert dist.world_size() == 1 and dist.rank() == 0 and dist.is_main()
    x = torch.randn(3, 2)
    assert dist.gather(x) is x
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert results[0] == results[1]
    assert results[0]["global_batch"] == 8 and results[0]["world"] == 2 and results[0]["per_epoch"] == 3
    assert results[0]["lr"] == pytest.approx(0.1 * 8 / 4)
    weights = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(WORLD)]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert torch.equal(weights[0][key], weights[1][key]), key
    initial = contrastive_method(seed=0)[0].objective.state_dict()
    assert not torch.equal(initial["head.1.weight"], weights[0]["head.1.weight"])  # it did train
    assert (tmp_path / "work" / "checkpoint.json").is_file()


def test_a_command_ends_a_torchrun_rank_in_step_with_the_others(monkeypatch, capsys):
    """After a command that loaded the distributed runtime, ``repbench`` leaves the process group through
    :func:`leave` (a barrier, then destroy): a rank that ended on its own aborted at exit in 6 of 25 two-rank runs.
    On one process :func:`leave` does nothing."""
    from benchmark import cli

    assert dist.leave() is True  # one process: nothing to wait for or destroy; it is rank 0
    calls: list[int] = []
    monkeypatch.setattr(dist, "leave", lambda: bool(calls.append(1)) or True)
    assert cli.main(["list", "methods"]) == 0
    assert calls == [1]
