"""Data-parallel extraction (benchmark/features/distributed.py): the sharding is DistributedSampler's, rows are
written by index with every row checked, and two real CPU ranks (gloo on 127.0.0.1) give exactly the features of
one process, in dataset order, with records written once by rank 0 and scored once on the gathered features."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from benchmark.errors import ContractError
from benchmark.features import distributed as ranks
from benchmark.features import extract
from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.testing import catalog_with, gloo_group

WORLD = 2
CATALOG = catalog_with()


class Lengths:
    """A Sortable text encoder whose feature is (length, batch spread): its order and batching both show."""

    modality, embed_dim, info, fingerprint = "text", 2, {}, "lengths"

    def sort_key(self, text):
        return len(text)

    def preprocess(self, samples):
        lengths = [len(s) for s in samples]
        return torch.tensor([[n, max(lengths) - min(lengths)] for n in lengths], dtype=torch.float32)

    def encode(self, batch):
        return batch


def _req(n: int, batch_size: int = 4) -> ranks.Request:
    return ranks.Request("enc", "data", "test", n, batch_size, "fp32", "e", "d")


@pytest.mark.parametrize(("n", "world"), [(37, 2), (10, 3), (9, 3), (2, 4), (1, 2), (0, 2)])
def test_shard_deals_the_positions_as_distributed_sampler_without_shuffle(n, world):
    from torch.utils.data import DistributedSampler

    data = list(range(n))
    for r in range(world):
        want = list(DistributedSampler(data, num_replicas=world, rank=r, shuffle=False)) if n else []
        assert ranks.shard(n, r, world).tolist() == want
    if n:
        dealt = np.concatenate([ranks.shard(n, r, world) for r in range(world)])
        assert len(dealt) == -(-n // world) * world and set(dealt.tolist()) == set(range(n))


def test_assemble_writes_rows_by_index_and_refuses_a_missing_row():
    feats = np.arange(12, dtype=np.float32).reshape(6, 2)
    idx = np.array([4, 0, 2, 1, 3, 0])  # 0 twice: a padded sample
    out = ranks.assemble(5, idx, feats, "enc")
    assert out.dtype == np.float32 and out.shape == (5, 2)
    for row, i in zip(feats[:5], idx[:5], strict=True):
        if i != 0:
            assert np.array_equal(out[i], row)
    with pytest.raises(ContractError, match=r"filled 4 of 5 rows: no rank returned sample\(s\) \[3\]"):
        ranks.assemble(5, idx[[0, 1, 2, 3, 5]], feats[[0, 1, 2, 3, 5]], "enc")
    with pytest.raises(ContractError, match="sample index 7, outside 0..4"):
        ranks.assemble(5, np.array([0, 1, 2, 3, 7]), feats[:5], "enc")
    with pytest.raises(ContractError, match="5 feature rows but 4 sample indices"):
        ranks.assemble(5, idx[:4], feats[:5], "enc")


def _simulated(monkeypatch, encoder, samples, batch_size):
    """local_rows of every rank (rank and world patched), assembled as the all-gather would."""
    from benchmark.runtime import distributed as dist

    monkeypatch.setattr(dist, "world_size", lambda: WORLD)
    parts = []
    for r in range(WORLD):
        monkeypatch.setattr(dist, "rank", lambda r=r: r)
        parts.append(ranks.local_rows(encoder, samples, _req(len(samples), batch_size), device="cpu", workers=0))
    idx = np.concatenate([p[0] for p in parts])
    return parts, ranks.assemble(len(samples), idx, np.concatenate([p[1] for p in parts]), "enc")


def test_shares_keep_the_length_sorted_batches_and_assemble_in_input_order(monkeypatch):
    texts = ["a" * k for k in (5, 1, 9, 3, 7, 2, 8, 4, 6)]  # 9 texts on 2 ranks: one padded
    parts, out = _simulated(monkeypatch, Lengths(), texts, batch_size=2)
    assert out[:, 0].tolist() == [5, 1, 9, 3, 7, 2, 8, 4, 6]
    for idx, feats in parts:
        lengths = [len(texts[i]) for i in idx]
        # each share in sorted order (rank 1's ends with the padding, the shortest text again), same size
        assert lengths[:4] == sorted(lengths[:4]) and len(idx) == 5
        assert feats[:, 1].max() <= 2  # batches of neighbours in length: spread at most 2 (1 apart per rank)


@pytest.mark.parametrize(("encoder", "atol"), [
    ("pixels", 0.0), pytest.param("timm/resnet18[pretrained=false,img_size=32]", 1e-5, marks=pytest.mark.slow)])
def test_shares_of_an_odd_image_split_give_the_single_process_features(monkeypatch, encoder, atol):
    """Exactly for pixels; for a network up to float rounding (other batches can take other kernels)."""
    images = CATALOG.resolve("datasets", "digits").load().split("test").samples[:37]
    enc = CATALOG.resolve("encoders", encoder).load()
    _, out = _simulated(monkeypatch, enc, images, batch_size=8)
    alone = extract(enc, images, batch_size=8)
    assert np.array_equal(out, alone) if atol == 0 else np.allclose(out, alone, rtol=1e-5, atol=atol)


# --- two real processes (gloo) ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(out: Path, rank: int, **kw) -> RunConfig:
    # every rank its own folders: ranks need no shared filesystem, and rank 1 must leave its own empty
    return RunConfig(results_dir=out / f"results{rank}", cache_dir=out / f"cache{rank}", device="cpu",
                     batch_size=64, quiet=True, distributed=True, **kw)


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    folder, report = Path(out), {}
    with gloo_group(init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD):
        enc = CATALOG.resolve("encoders", "pixels").load()
        images = CATALOG.resolve("datasets", "digits").load().split("test").samples[:37]  # odd: padded
        report["features"] = ranks.gather_rows(37, lambda: ranks.local_rows(enc, images, _req(37, 8), device="cpu",
                                                                             workers=0), "pixels").tolist()

        def broken():  # rank 1 cannot extract: both ranks raise, nobody waits on the gather
            if rank == 1:
                raise ContractError("rank one's batch is broken")
            return ranks.local_rows(enc, images, _req(37, 8), device="cpu", workers=0)

        try:
            ranks.gather_rows(37, broken, "pixels")
        except ContractError as exc:
            report["failure"] = f"{type(exc).__name__}: {exc}"

        plan = make_plan(CATALOG, ["pixels"], ["digits"], ["knn", "linear"])
        records = [r.to_json() for r in run_plan(CATALOG, plan, _config(folder, rank))]
        again = [r.to_json() for r in run_plan(CATALOG, plan, _config(folder, rank, force=True))]  # rank 0's cache hits: no requests
        report["records"] = [[r["metrics"]["top1"], r["timings"]["features_cached"]] for r in records + again]
    (folder / f"rank{rank}.json").write_text(json.dumps(report))


@pytest.mark.slow
def test_two_ranks_gather_the_single_process_features_and_rank0_alone_scores_and_writes(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(WORLD))
    enc = CATALOG.resolve("encoders", "pixels").load()
    images = CATALOG.resolve("datasets", "digits").load().split("test").samples[:37]
    alone = extract(enc, images, batch_size=8)
    assert np.array_equal(np.asarray(r0["features"], np.float32), alone)
    assert r1["features"] == r0["features"]
    assert r0["failure"] == "RankFailure: data-parallel extraction of 'pixels': rank 1 failed: ContractError: " \
                            "rank one's batch is broken"
    assert r1["failure"] == "ContractError: rank one's batch is broken"

    single = run_plan(CATALOG, make_plan(CATALOG, ["pixels"], ["digits"], ["knn", "linear"]),
                      RunConfig(results_dir=tmp_path / "single", use_cache=False, device="cpu", batch_size=64,
                                quiet=True))
    top1 = [r.metrics["top1"] for r in single]
    cached_none, cached_all = {"train": False, "test": False}, {"train": True, "test": True}
    assert r0["records"] == [[top1[0], cached_none], [top1[1], cached_none],
                             [top1[0], cached_all], [top1[1], cached_all]]
    assert r1["records"] == []  # no records, no scores on rank 1
    assert len(list((tmp_path / "results0").glob("*.json"))) == 2
    assert len(list((tmp_path / "cache0").glob("*.npz"))) == 2
    assert not (tmp_path / "results1").exists() and not (tmp_path / "cache1").exists()


@pytest.mark.slow
def test_torchrun_eval_writes_the_records_once_with_the_single_process_metrics(tmp_path):
    """``torchrun --nproc_per_node=2 -m benchmark eval ...`` on CPU: one table, one record per cell, the metrics
    of a single-process run."""
    args = ["eval", "--encoder", "pixels", "--dataset", "digits", "--protocol", "knn", "--device", "cpu",
            "--no-cache"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "benchmark",
           *args, "--results", str(tmp_path / "ranks")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("| pixels") == 1  # rank 0 alone prints the table
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "ranks").glob("*.json")]
    from benchmark.cli import main

    assert main([*args, "--results", str(tmp_path / "single"), "--quiet"]) == 0
    [single] = [json.loads(p.read_text()) for p in (tmp_path / "single").glob("*.json")]
    assert record["status"] == "ok" and record["metrics"] == single["metrics"]
    assert record["config_digest"] == single["config_digest"]
