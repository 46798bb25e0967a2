"""Reliability of pretraining runs (issue 19): one command, one result; resume from step 0; stale records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark import Backbone, MethodSpec, TrainDefaults, hookimpl
from benchmark.methods.budget import parse_budget
from benchmark.methods.runs import WEIGHTS_FILE, PretrainRequest, pretrain
from benchmark.testing import catalog_with

import helpers

BACKBONE = "timm/resnet18[pretrained=false,img_size=32]"
FAIL_AT: dict[str, int] = {}


class Views:
    def __init__(self, backbone: Backbone) -> None:
        self.size = backbone.input_size

    def __call__(self, sample):
        c, h, w = self.size
        x = torch.from_numpy(np.asarray(sample.convert("RGB").resize((w, h)), np.float32) / 255).permute(2, 0, 1)
        return [x + 0.1 * torch.randn_like(x), x + 0.1 * torch.randn_like(x)]


class Objective(torch.nn.Module):
    """A backbone plus a randomly initialised head (like SimCLR's projector)."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.head = torch.nn.Linear(backbone.embed_dim, 16)
        self.calls = 0

    def forward(self, views, labels=None):
        self.calls += 1
        if self.calls == FAIL_AT.get("step"):
            raise KeyboardInterrupt("killed")
        a, b = (self.head(self.encoder.encode(v)) for v in views)
        return torch.nn.functional.mse_loss(a, b) - a.std(0).mean()


class Headed:
    def __init__(self, backbone: Backbone) -> None:
        self.objective = Objective(backbone)
        self.momentum_pairs = ()
        self.defaults = TrainDefaults(optimizer="sgd", lr=0.05, reference_batch=8, batch_size=8, weight_decay=0.0)
        self.views = Views(backbone)


@pytest.fixture
def catalog():
    mod = helpers.make_plugin()

    @hookimpl
    def register_methods():
        return [MethodSpec("headed", build=Headed, description="test method with a random head")]

    mod.register_methods = register_methods
    return catalog_with(("t", mod))


def _request(catalog, budget="3steps"):
    return PretrainRequest(catalog.resolve("methods", "headed"), catalog.resolve("encoders", BACKBONE),
                           catalog.resolve("datasets", "tiny[n=24,size=8]"), parse_budget(budget), seed=0,
                           batch_size=8)


@pytest.mark.slow
def test_two_runs_of_one_command_give_byte_identical_weights_and_a_resume_from_step_0_too(catalog, tmp_path):
    torch.manual_seed(123)  # whatever the caller's global RNG holds
    a = pretrain(catalog, _request(catalog), tmp_path / "a")
    torch.rand(7)
    b = pretrain(catalog, _request(catalog), tmp_path / "b")
    assert (a / WEIGHTS_FILE).read_bytes() == (b / WEIGHTS_FILE).read_bytes()
    # killed at the second step, before any checkpoint: the rerun starts over and must end where `a` did
    FAIL_AT["step"] = 2
    try:
        with pytest.raises(KeyboardInterrupt):
            pretrain(catalog, _request(catalog), tmp_path / "c")
    finally:
        FAIL_AT.clear()
    c = _request(catalog).folder(tmp_path / "c")
    assert not (c / WEIGHTS_FILE).exists() and not list(c.glob("checkpoint*"))
    torch.rand(3)
    assert pretrain(catalog, _request(catalog), tmp_path / "c") == c
    assert (c / WEIGHTS_FILE).read_bytes() == (a / WEIGHTS_FILE).read_bytes()


def _eval(catalog, name, tmp_path):
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig, run_plan

    plan = make_plan(catalog, [name], ["tiny[n=24,size=8]"], ["centroid"])
    config = RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True)
    return plan, [r.to_json() for r in run_plan(catalog, plan, config)]


@pytest.mark.slow
def test_new_weights_behind_one_run_name_rerun_its_finished_records(catalog, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    import benchmark.catalog

    monkeypatch.setattr(benchmark.catalog.Catalog, "load", classmethod(lambda cls, plugins=None: catalog))
    folder = pretrain(catalog, _request(catalog, "1steps"), tmp_path / "runs")
    calls = catalog.plugins.pm.get_plugin("t").calls
    plan, [first] = _eval(catalog, f"run:{folder}", tmp_path)
    n = calls["evaluate"]
    # `run:X/` and `run:X` are one encoder: one label, one record, nothing rerun
    slash, [same] = _eval(catalog, f"run:{folder}/", tmp_path)
    # (named by its content, issue 18: the name pretrain gave the folder, wherever it sits)
    assert slash.cells[0].encoder.label == plan.cells[0].encoder.label == f"run:{folder.name}"
    assert calls["evaluate"] == n and same == first
    # the weights behind the name change (as after `pretrain --force`): the finished record must not be reused
    state = load_file(str(folder / WEIGHTS_FILE))
    save_file({k: (v + 1 if v.is_floating_point() else v) for k, v in state.items()}, str(folder / WEIGHTS_FILE))
    _, [second] = _eval(catalog, f"run:{folder}", tmp_path)
    assert calls["evaluate"] == n + 1
    assert second["encoder"]["weights_hash"] != first["encoder"]["weights_hash"]
    assert second["config_digest"] != first["config_digest"]


def test_a_checkpoint_option_naming_a_file_puts_its_content_hash_in_the_config_digest(tmp_path):
    from benchmark.catalog import Resolved
    from benchmark.specs import EncoderSpec
    from benchmark.storage.local_weights import local_weights_id

    def load(checkpoint: str = "") -> None:
        return None

    spec = EncoderSpec("local", "image", load=load)
    weights = tmp_path / "w.bin"
    assert local_weights_id(Resolved(spec, "local", {"checkpoint": str(weights)})) is None  # no file yet
    weights.write_bytes(b"one")
    one = local_weights_id(Resolved(spec, "local", {"checkpoint": str(weights)}))
    weights.write_bytes(b"two!")
    two = local_weights_id(Resolved(spec, "local", {"checkpoint": str(weights)}))
    assert one and two and one != two
    assert local_weights_id(Resolved(spec, "local", {"checkpoint": ""})) is None


# --- damaged or edited run folders: one line each, naming the file (items 10, 13) --------------------------------
@pytest.fixture
def trained(catalog, tmp_path, monkeypatch):
    import benchmark.catalog

    monkeypatch.setattr(benchmark.catalog.Catalog, "load", classmethod(lambda cls, plugins=None: catalog))
    return pretrain(catalog, _request(catalog, "2steps"), tmp_path / "runs")


def _edit(path, **fields):
    import json

    data = json.loads(path.read_text())
    for dotted, value in fields.items():
        target = data
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        if value is ...:
            del target[last]
        else:
            target[last] = value
    path.write_text(json.dumps(data))


def _one_line(info, path):
    text = str(info.value)
    assert str(path) in text and "\n" not in text, text


@pytest.mark.slow
def test_edited_or_damaged_run_folders_are_one_line_errors_naming_the_file(trained, catalog, tmp_path):
    from benchmark.errors import DataError, RecordError
    from benchmark.methods.runs import RUN_FILE, load_run

    run = trained / RUN_FILE
    original = run.read_text()
    for fields, error, message in (
        ({"dataset": "digits"}, RecordError, "no longer match its config_digest"),
        ({"budget": {"steps": 5000}}, RecordError, "no longer match its config_digest"),
        ({"result__steps": 5000}, RecordError, r"field 'result.steps' \(5000\) is not what its final checkpoint"),
        ({"backbone": f"run:{trained}"}, RecordError, "a run's backbone is never a run"),
    ):
        _edit(run, **fields)
        with pytest.raises(error, match=message) as info:
            load_run(str(trained))
        _one_line(info, run)
        run.write_text(original)
    run.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(RecordError, match="not valid JSON") as info:
        load_run(str(trained))
    _one_line(info, run)
    run.write_text(original)
    # weights: a link out of the folder, then a truncated file
    weights = trained / WEIGHTS_FILE
    outside = tmp_path / "elsewhere.safetensors"
    weights.rename(outside)
    weights.symlink_to(outside)
    with pytest.raises(DataError, match="outside the run folder") as info:
        load_run(str(trained))
    _one_line(info, weights)
    weights.unlink()
    weights.write_bytes(outside.read_bytes()[:1000])
    with pytest.raises(DataError, match="damaged weights") as info:
        load_run(str(trained))
    _one_line(info, weights)


@pytest.mark.slow
def test_damaged_checkpoints_are_one_line_errors_naming_the_file(catalog, tmp_path):
    from benchmark.errors import DataError
    from benchmark.methods.checkpoint import CHECKPOINT

    FAIL_AT["step"] = 3  # killed at the third step, after the checkpoint at step 2 (checkpoint_every_s=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            pretrain(catalog, _request(catalog), tmp_path / "runs", checkpoint_every_s=0.0)
    finally:
        FAIL_AT.clear()
    folder = _request(catalog).folder(tmp_path / "runs")
    meta = folder / CHECKPOINT
    original = meta.read_text()
    [tensors] = folder.glob("checkpoint-*.safetensors")
    good = tensors.read_bytes()
    for damage, message, named in (
        (lambda: _edit(meta, loss_curve=...), "a damaged or incomplete checkpoint \\(missing 'loss_curve'\\)", meta),
        (lambda: meta.write_text('{"a":' * 100_000 + "1" + "}" * 100_000), "not a readable training checkpoint", meta),
        (lambda: tensors.write_bytes(good[: len(good) // 2]), "a damaged checkpoint file", tensors),
    ):
        damage()
        with pytest.raises(DataError, match=message) as info:
            pretrain(catalog, _request(catalog), tmp_path / "runs")
        _one_line(info, named)
        meta.write_text(original)
        tensors.write_bytes(good)


def test_an_objective_whose_loss_has_no_gradient_is_a_contract_error_naming_the_method(catalog, tmp_path):
    from benchmark.errors import ContractError

    def detached(self, views, labels=None):
        return torch.tensor(1.0)

    Objective.forward, original = detached, Objective.forward
    try:
        with pytest.raises(ContractError, match="method 'headed': objective.*returned a loss without a gradient"):
            pretrain(catalog, _request(catalog, "1steps"), tmp_path / "runs")
    finally:
        Objective.forward = original
