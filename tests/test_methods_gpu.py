"""The 2021 methods on CUDA (marker gpu: skipped without it, run by scripts/gpu_check.sh): each trains through
``repbench pretrain --device cuda`` (bf16 autocast, the loop's default there) with the online probe and collapse
monitors on the device and evaluates as ``run:<folder>``; and the loop at fp32 takes the same steps on CUDA as on
the CPU (the views are drawn on the CPU from the same seed, so only the device's arithmetic differs)."""

from __future__ import annotations

import json
import math

import pytest
from test_methods_2021 import E2E, _data, _method

from benchmark.cli import main
from benchmark.methods.trainer import train
from benchmark.specs import Budget

pytestmark = pytest.mark.gpu  # skipped without CUDA (tests/conftest.py)


def _pretrain(tmp_path, name: str, extra: list[str]) -> dict:
    method, backbone = E2E[name]
    out = tmp_path / "cuda"
    code = main(["pretrain", "--method", method, "--backbone", backbone, "--dataset", "digits", "--train-size",
                 "96", "--budget", "4steps", "--batch-size", "8", "--device", "cuda", "--out", str(out / "runs"),
                 "--results", str(out / "results"), "--no-cache", *extra])
    assert code == 0
    [folder] = [p for p in (out / "runs").iterdir() if p.is_dir()]
    return {"run": json.loads((folder / "run.json").read_text()),
            "loss": json.loads((folder / "loss_curve.json").read_text())["loss"], "results": out / "results"}


@pytest.mark.parametrize("name", sorted(E2E))
def test_each_new_method_trains_watched_at_bf16_on_cuda_and_evaluates(name, tmp_path):
    got = _pretrain(tmp_path, name, ["--probe-every", "2", "--eval", "knn"])
    result = got["run"]["result"]
    assert result["steps"] == 4 and result["precision"] == "bf16" and all(map(math.isfinite, got["loss"]))
    curve = result["watch_curve"]
    assert [p["step"] for p in curve] == [2, 4] and all(0 <= p["linear"] <= 1 and p["probe_C"] > 0 for p in curve)
    assert result["peak_memory_bytes"] > 0 and result["train_samples_per_s"] > 0
    records = [json.loads(p.read_text()) for p in got["results"].rglob("*.json")]
    assert any(r.get("status") == "ok" and r["protocol"]["name"] == "knn" for r in records)


@pytest.mark.parametrize("name", sorted(E2E))
def test_fp32_steps_on_cuda_match_the_cpu(name, tmp_path):
    losses = {}
    for device in ("cpu", "cuda"):
        method, backbone = _method(name)  # the same initial weights (seeded) on both
        result = train(method, backbone, _data(), budget=Budget(steps=4), workdir=tmp_path / device,
                       config_digest="gpu", device=device, precision="fp32", batch_size=4)
        losses[device] = result.loss_curve
    assert losses["cuda"][0] == pytest.approx(losses["cpu"][0], rel=1e-3)  # same views, same weights
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=2e-2)  # four steps apart only by arithmetic
