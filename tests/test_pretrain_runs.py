"""Pretraining runs end to end: run folders, the run: encoder round trip, resume/skip, bad input, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmark import Backbone, MethodSpec, TrainDefaults, hookimpl
from benchmark.errors import MissingData, OptionError
from benchmark.features import extract
from benchmark.methods.budget import parse_budget
from benchmark.methods.runs import (
    WEIGHTS_FILE,
    PretrainRequest,
    load_run,
    pretrain,
    read_run,
    trainable_backbone,
)
from benchmark.testing import catalog_with

import helpers

BACKBONE = "timm/resnet18[pretrained=false,img_size=32]"


class Views:
    def __init__(self, backbone: Backbone) -> None:
        self.size = backbone.input_size
        self.mean = torch.tensor(backbone.mean).view(-1, 1, 1)
        self.std = torch.tensor(backbone.std).view(-1, 1, 1)

    def __call__(self, sample):
        c, h, w = self.size
        x = torch.from_numpy(np.asarray(sample.convert("RGB").resize((w, h)), np.float32) / 255).permute(2, 0, 1)
        x = (x - self.mean) / self.std
        return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


class Objective(torch.nn.Module):
    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.encoder = backbone.encoder

    def forward(self, views, labels=None):
        a, b = (self.encoder.encode(v) for v in views)
        return torch.nn.functional.mse_loss(a, b) - a.std(0).mean()


class Tiny:
    def __init__(self, backbone: Backbone, lr: float) -> None:
        self.objective = Objective(backbone)
        self.momentum_pairs = ()
        self.defaults = TrainDefaults(optimizer="sgd", lr=lr, reference_batch=8, batch_size=8, weight_decay=0.0)
        self.views = Views(backbone)


def build_tiny(backbone: Backbone, lr: float = 0.01) -> Tiny:
    return Tiny(backbone, lr)


def _plugin():
    mod = helpers.make_plugin()

    @hookimpl
    def register_methods():
        return [MethodSpec("tiny", build=build_tiny, description="test method")]

    mod.register_methods = register_methods
    return mod


@pytest.fixture
def catalog():
    return catalog_with(("t", _plugin()))


def _request(catalog, method="tiny", budget="3steps", dataset="tiny[n=24,size=8]"):
    return PretrainRequest(catalog.resolve("methods", method), catalog.resolve("encoders", BACKBONE),
                           catalog.resolve("datasets", dataset), parse_budget(budget), seed=0, batch_size=8)


def test_pixels_is_not_a_trainable_backbone(catalog):
    with pytest.raises(OptionError, match=r"--backbone pixels: PixelsEncoder is not a trainable torch image encoder"):
        trainable_backbone(catalog.resolve("encoders", "pixels"), "cpu")


def test_a_run_trains_saves_and_loads_back_as_an_encoder_with_the_same_features(catalog, tmp_path, monkeypatch):
    import benchmark.catalog

    monkeypatch.setattr(benchmark.catalog.Catalog, "load", classmethod(lambda cls, plugins=None: catalog))
    folder = pretrain(catalog, _request(catalog), tmp_path / "runs")
    run = read_run(folder)
    assert run["status"] == "finished" and run["result"]["steps"] == 3 and run["method"] == "tiny"
    assert run["backbone"] == "timm/resnet18[img_size=32,pretrained=false]" and run["data"]["size"] == 24 and not run["uses_labels"]
    encoder = load_run(str(folder))
    from safetensors.torch import load_file

    saved = load_file(str(folder / WEIGHTS_FILE))
    assert all(torch.equal(v, saved[k]) for k, v in encoder.inner.backbone.state_dict().items())
    fresh = catalog.resolve("encoders", BACKBONE).load()
    assert encoder.fingerprint != fresh.fingerprint  # other weights, other cache entries
    images = catalog.resolve("datasets", "tiny[n=24,size=8]").load().split("test").samples
    fresh.backbone.load_state_dict(saved)
    assert np.array_equal(extract(encoder, images), extract(fresh, images))
    info = encoder.info
    assert info["pretraining"]["method"] == "tiny" and info["pretraining"]["budget"] == {"steps": 3}
    assert info["weights"].startswith("pretrained-run:tiny")
    # the same request again: finished, so skipped (no retraining); a folder of another config is refused
    messages = []
    assert pretrain(catalog, _request(catalog), tmp_path / "runs", log=messages.append) == folder
    assert any("already trained" in m for m in messages)
    other = _request(catalog, method="tiny[lr=0.02]")
    (other.folder(tmp_path / "runs")).mkdir(parents=True)
    (other.folder(tmp_path / "runs") / "run.json").write_text(json.dumps({**run, "config_digest": "someone-else"}))
    with pytest.raises(OptionError, match="holds another configuration"):
        pretrain(catalog, other, tmp_path / "runs")


def test_an_unfinished_run_is_not_an_encoder(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"kind": "pretraining", "status": "running"}))
    with pytest.raises(MissingData, match="has not finished training"):
        load_run(str(tmp_path))
    with pytest.raises(MissingData, match="not a repbench run folder"):
        load_run(str(tmp_path / "nope"))


@pytest.mark.slow
def test_pretrain_under_torchrun_trains_data_parallel_and_rank0_writes_the_run(tmp_path):
    """`torchrun --nproc_per_node=2 -m benchmark.cli pretrain ... --eval knn` on CPU (gloo): one run folder,
    written once, trained with the global batch of both ranks; rank 0 evaluates it alone once every rank has left
    the group (no rank waits at exit on the evaluation)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "benchmark.cli", "pretrain", "--method", "simclr[proj_hidden=32,proj_dim=16]",
           "--backbone", "timm/resnet18[pretrained=false,img_size=32]", "--dataset", "digits", "--budget", "3steps",
           "--batch-size", "8", "--device", "cpu", "--out", str(tmp_path / "runs"), "--quiet",
           "--eval", "knn", "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    [folder] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    run = read_run(folder)
    assert run["status"] == "finished" and run["result"]["world_size"] == 2 and run["result"]["global_batch"] == 16
    assert proc.stdout.count("run folder:") == 1
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("*.json")]
    assert record["status"] == "ok" and record["protocol"]["name"] == "knn"
