"""The runner: plans, records, resume, force, failures as records, shards, modality mismatches."""

from __future__ import annotations

import json

import pytest

from benchmark.options import SpecStringError
from benchmark.runner import RunConfig, make_plan, run_plan
from benchmark.testing import catalog_with

import helpers


@pytest.fixture
def catalog():
    return catalog_with(("harness", helpers.make_plugin()))


def _config(tmp_path, **kw):
    return RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True, **kw)


def test_record_holds_every_documented_field(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny[n=60]"], ["centroid"])
    [rec] = run_plan(catalog, plan, _config(tmp_path))
    assert rec["status"] == "ok" and rec["error"] is None and rec["schema_version"] == 1
    assert rec["encoder"]["name"] == "pixels" and rec["encoder"]["embed_dim"] == 36
    assert rec["encoder"]["weights"] == "none" and rec["encoder"]["plugin"] == "builtin:pixels"
    assert rec["dataset"]["split_sizes"] == {"train": 60, "test": 30} and rec["dataset"]["seed"] == 0
    assert rec["dataset"]["options"] == {"n": 60, "size": 6, "seed": 0, "classes": 2}
    assert rec["protocol"]["hyperparameters"] == {"fail": False} and rec["protocol"]["chosen"] == {"centers": 2}
    m = rec["metrics"]
    assert m["top1"] == 1.0 and m["n_test"] == 30 and m["top1_ci95"][0] <= 1.0
    assert set(rec["timings"]) >= {"load_s", "features_s", "protocol_s", "total_s"}
    env = rec["environment"]
    assert env["torch"] and env["timm"] and env["device"] == "cpu" and "harness" in env["plugins"]
    [path] = (tmp_path / "results").glob("*.json")
    assert json.loads(path.read_text()) == rec


def test_rerun_skips_finished_cells_and_force_reruns(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    first = run_plan(catalog, plan, _config(tmp_path))
    before = helpers.CALLS["evaluate"]
    again = run_plan(catalog, plan, _config(tmp_path))
    assert helpers.CALLS["evaluate"] == before and again == first
    forced = run_plan(catalog, plan, _config(tmp_path, force=True))
    assert helpers.CALLS["evaluate"] == before + 1
    assert forced[0]["metrics"] == first[0]["metrics"]  # same inputs, same numbers
    assert forced[0]["timings"]["features_cached"] == {"train": True, "test": True}


def test_failed_cell_is_a_record_and_the_sweep_goes_on(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid[fail=true]", "centroid"])
    bad, good = run_plan(catalog, plan, _config(tmp_path))
    assert bad["status"] == "error" and bad["error"]["type"] == "RuntimeError"
    assert "exploded on purpose" in bad["error"]["message"] and "Traceback" in bad["error"]["traceback"]
    assert bad["metrics"] == {} and good["status"] == "ok"
    # a rerun retries the failed cell only
    before = helpers.CALLS["evaluate"]
    run_plan(catalog, plan, _config(tmp_path))
    assert helpers.CALLS["evaluate"] == before + 1


def test_loading_failure_marks_every_cell_of_the_pair(catalog, tmp_path):
    plan = make_plan(catalog, ["timm/not_a_real_model"], ["tiny"], ["centroid"])
    [rec] = run_plan(catalog, plan, _config(tmp_path))
    assert rec["status"] == "error" and "timm has no model" in rec["error"]["message"]


def test_unknown_names_and_options_fail_before_any_work(catalog):
    with pytest.raises(LookupError, match="Did you mean 'tiny'"):
        make_plan(catalog, ["pixels"], ["tinny"], ["centroid"])
    with pytest.raises(SpecStringError, match="unknown option"):
        make_plan(catalog, ["pixels[colour=red]"], ["tiny"], ["centroid"])
    with pytest.raises(ValueError, match="listed twice"):
        make_plan(catalog, ["pixels", "pixels"], ["tiny"], ["centroid"])


def test_shards_partition_the_encoder_dataset_pairs(catalog):
    encs = ["pixels", "pixels[size=4]", "pixels[size=5]"]
    full = make_plan(catalog, encs, ["tiny", "tiny[seed=1]"], ["centroid"]).cells
    shards = [make_plan(catalog, encs, ["tiny", "tiny[seed=1]"], ["centroid"], shard=(i, 4)).cells for i in range(4)]
    labels = sorted(c.labels for s in shards for c in s)
    assert labels == sorted(c.labels for c in full) and len(full) == 6
    with pytest.raises(ValueError, match="shard"):
        make_plan(catalog, encs, ["tiny"], ["centroid"], shard=(4, 4))


def test_mismatched_modalities_are_left_out_not_failed(catalog):
    from benchmark import EncoderSpec

    text_enc = EncoderSpec("fake-text", "text", load=lambda **o: None)
    catalog.specs["encoders"]["fake-text"] = text_enc
    catalog.provider[("encoders", "fake-text")] = "test"
    plan = make_plan(catalog, ["pixels", "fake-text"], ["tiny"], ["centroid"])
    assert [c.encoder.name for c in plan.cells] == ["pixels"]
    assert plan.skipped_modality == [("fake-text", "tiny", "centroid")]


def test_features_are_extracted_once_and_reused_from_disk(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [first] = run_plan(catalog, plan, _config(tmp_path))
    assert first["timings"]["features_cached"] == {"train": False, "test": False}
    [again] = run_plan(catalog, plan, _config(tmp_path, force=True))
    assert again["timings"]["features_cached"] == {"train": True, "test": True}
    assert again["metrics"] == first["metrics"]
    [nocache] = run_plan(catalog, plan, _config(tmp_path, force=True, use_cache=False))
    assert nocache["timings"]["features_cached"] == {"train": False, "test": False}


def test_odd_values_from_plugins_still_give_a_valid_record(catalog, tmp_path):
    """Tensors, numpy scalars, tuples, paths and NaN in metrics or info must not stop the sweep."""
    from pathlib import Path

    import numpy as np
    import torch

    from benchmark import ProtocolOutput, ProtocolSpec

    def odd(task):
        _, y = task.features("test")
        return ProtocolOutput(predictions=y, labels=y, metrics={"t": torch.tensor(0.5), "n": np.int64(3),
                                                                "p": Path("/x"), "nan": float("nan")})

    catalog.specs["protocols"]["odd"] = ProtocolSpec("odd", evaluate=odd)
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["odd", "centroid"])
    odd_rec, next_rec = run_plan(catalog, plan, _config(tmp_path))
    assert odd_rec["status"] == "ok" and odd_rec["metrics"]["t"] == 0.5 and odd_rec["metrics"]["n"] == 3
    assert odd_rec["metrics"]["p"] == "/x" and odd_rec["metrics"]["nan"] is None
    assert next_rec["status"] == "ok"
    assert len(list((tmp_path / "results").glob("*.json"))) == 2


def test_rerun_redoes_a_cell_whose_configuration_changed(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [rec] = run_plan(catalog, plan, _config(tmp_path))
    [path] = (tmp_path / "results").glob("*.json")
    stale = json.loads(path.read_text())
    stale["config_digest"] = "made-with-other-defaults"
    path.write_text(json.dumps(stale))
    before = helpers.CALLS["evaluate"]
    run_plan(catalog, plan, _config(tmp_path))
    assert helpers.CALLS["evaluate"] == before + 1
    assert json.loads(path.read_text())["config_digest"] == rec["config_digest"]


def test_reduced_precision_is_recorded_as_what_really_ran(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [fp32] = run_plan(catalog, plan, _config(tmp_path))
    [bf16] = run_plan(catalog, plan, _config(tmp_path, precision="bf16"))  # CPU: autocast does not apply
    assert bf16["precision"] == "fp32" and bf16 == fp32


def test_each_second_is_counted_once_across_a_pairs_cells(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid", "centroid[fail=true]"])
    first, second = run_plan(catalog, plan, _config(tmp_path))
    assert first["timings"]["load_s"] > 0 and second["timings"]["load_s"] == 0.0
    assert set(first["timings"]["features_s"]) == {"train", "test"} and second["timings"]["features_s"] == {}


def test_plugin_info_cannot_overwrite_the_records_identity(catalog, tmp_path, monkeypatch):
    from benchmark.encoders import pixels as vision_encoders

    monkeypatch.setattr(vision_encoders.PixelsEncoder, "info",
                        property(lambda self: {"label": "impostor", "name": "x", "weights": "none"}))
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [rec] = run_plan(catalog, plan, _config(tmp_path))
    assert rec["encoder"]["label"] == "pixels" and rec["encoder"]["name"] == "pixels"
    assert run_plan(catalog, plan, _config(tmp_path)) == [rec]  # found again on resume
