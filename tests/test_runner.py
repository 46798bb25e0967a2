"""The runner: plans, records, resume, force, failures as records, shards, modality mismatches."""

from __future__ import annotations

import json

import pytest

from benchmark.options import SpecStringError
from benchmark.plan import make_plan
from benchmark.results.record import Record
from benchmark.runner import RunConfig, run_plan
from benchmark.testing import catalog_with

import helpers


def _records(*args, **kwargs):
    """run_plan's typed records as the JSON objects written to disk, which the assertions below read."""
    records = run_plan(*args, **kwargs)
    assert all(isinstance(r, Record) for r in records)
    return [r.to_json() for r in records]


@pytest.fixture
def catalog():
    return catalog_with(("harness", helpers.make_plugin()))


def calls(catalog) -> int:
    """How often this catalog's centroid protocol ran."""
    return catalog.plugins.pm.get_plugin("harness").calls["evaluate"]


def _config(tmp_path, **kw):
    return RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True, **kw)


def test_record_holds_every_documented_field(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny[n=60]"], ["centroid"])
    [rec] = _records(catalog, plan, _config(tmp_path))
    assert rec["status"] == "ok" and rec["error"] is None and rec["schema_version"] == 1
    assert rec["encoder"]["name"] == "pixels" and rec["encoder"]["embed_dim"] == 36
    assert rec["encoder"]["weights"] == "none" and rec["encoder"]["plugin"] == "builtin:pixels"
    assert rec["dataset"]["split_sizes"] == {"train": 60, "test": 30} and rec["dataset"]["seed"] == 0
    assert rec["dataset"]["options"] == {"n": 60, "size": 6, "seed": 0, "classes": 2}
    assert rec["protocol"]["hyperparameters"] == {"fail": False} and rec["protocol"]["chosen"] == {"centers": 2}
    m = rec["metrics"]
    lo, hi = m["top1_ci95"]
    assert m["top1"] == 1.0 and m["n_test"] == 30 and lo <= m["top1"] <= hi
    assert set(rec["timings"]) >= {"load_s", "features_s", "protocol_s", "total_s"}
    env = rec["environment"]
    assert env["torch"] and env["timm"] and env["device"] == "cpu" and "harness" in env["plugins"]
    [path] = (tmp_path / "results").glob("*.json")
    assert json.loads(path.read_text()) == rec


def test_rerun_skips_finished_cells_and_force_reruns(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    first = _records(catalog, plan, _config(tmp_path))
    before = calls(catalog)
    again = _records(catalog, plan, _config(tmp_path))
    assert calls(catalog) == before and again == first
    forced = _records(catalog, plan, _config(tmp_path, force=True))
    assert calls(catalog) == before + 1
    assert forced[0]["metrics"] == first[0]["metrics"]  # same inputs, same numbers
    assert forced[0]["timings"]["features_cached"] == {"train": True, "test": True}


def test_failed_cell_is_a_record_and_the_sweep_goes_on(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid[fail=true]", "centroid"])
    bad, good = _records(catalog, plan, _config(tmp_path))
    assert bad["status"] == "error" and bad["error"]["type"] == "RuntimeError"
    assert "exploded on purpose" in bad["error"]["message"] and "Traceback" in bad["error"]["traceback"]
    assert bad["metrics"] == {} and good["status"] == "ok"
    # a rerun retries the failed cell only
    before = calls(catalog)
    _records(catalog, plan, _config(tmp_path))
    assert calls(catalog) == before + 1


def test_loading_failure_marks_every_cell_of_the_pair(catalog, tmp_path):
    # a misspelled architecture is refused when the plan is made (tests/test_upfront_errors.py); a tag that
    # does not exist can only be found out by loading
    plan = make_plan(catalog, ["timm/resnet18.no_such_tag"], ["tiny"], ["centroid"])
    [rec] = _records(catalog, plan, _config(tmp_path))
    assert rec["status"] == "error" and "could not load its pretrained weights" in rec["error"]["message"]


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

    catalog.add("encoders", EncoderSpec("fake-text", "text", load=lambda **o: None), plugin="test")
    plan = make_plan(catalog, ["pixels", "fake-text"], ["tiny"], ["centroid"])
    assert [c.encoder.name for c in plan.cells] == ["pixels"]
    assert plan.skipped_modality == [("fake-text", "tiny", "centroid")]


def test_features_are_extracted_once_and_reused_from_disk(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [first] = _records(catalog, plan, _config(tmp_path))
    assert first["timings"]["features_cached"] == {"train": False, "test": False}
    [again] = _records(catalog, plan, _config(tmp_path, force=True))
    assert again["timings"]["features_cached"] == {"train": True, "test": True}
    assert again["metrics"] == first["metrics"]
    [nocache] = _records(catalog, plan, _config(tmp_path, force=True, use_cache=False))
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

    catalog.add("protocols", ProtocolSpec("odd", evaluate=odd), plugin="test")
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["odd", "centroid"])
    odd_rec, next_rec = _records(catalog, plan, _config(tmp_path))
    assert odd_rec["status"] == "ok" and odd_rec["metrics"]["t"] == 0.5 and odd_rec["metrics"]["n"] == 3
    assert odd_rec["metrics"]["p"] == "/x" and odd_rec["metrics"]["nan"] is None
    assert next_rec["status"] == "ok"
    assert len(list((tmp_path / "results").glob("*.json"))) == 2


def test_rerun_redoes_a_cell_whose_configuration_changed(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [rec] = _records(catalog, plan, _config(tmp_path))
    [path] = (tmp_path / "results").glob("*.json")
    stale = json.loads(path.read_text())
    stale["config_digest"] = "made-with-other-defaults"
    path.write_text(json.dumps(stale))
    before = calls(catalog)
    _records(catalog, plan, _config(tmp_path))
    assert calls(catalog) == before + 1
    assert json.loads(path.read_text())["config_digest"] == rec["config_digest"]


def test_reduced_precision_is_recorded_as_what_really_ran(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [fp32] = _records(catalog, plan, _config(tmp_path))
    before = calls(catalog)
    # CPU: autocast does not apply; force makes it really run again rather than find the fp32 record
    [bf16] = _records(catalog, plan, _config(tmp_path, precision="bf16", force=True))
    assert calls(catalog) == before + 1
    assert bf16["precision"] == "fp32" and bf16["config_digest"] == fp32["config_digest"]
    assert bf16["metrics"] == fp32["metrics"]


def test_each_second_is_counted_once_across_a_pairs_cells(catalog, tmp_path):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid", "centroid[fail=true]"])
    first, second = _records(catalog, plan, _config(tmp_path))
    assert first["timings"]["load_s"] > 0 and second["timings"]["load_s"] == 0.0
    assert set(first["timings"]["features_s"]) == {"train", "test"} and second["timings"]["features_s"] == {}


def test_plugin_info_cannot_overwrite_the_records_identity(catalog, tmp_path, monkeypatch):
    from benchmark.encoders import pixels as vision_encoders

    monkeypatch.setattr(vision_encoders.PixelsEncoder, "info",
                        property(lambda self: {"label": "impostor", "name": "x", "weights": "none"}))
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"])
    [rec] = _records(catalog, plan, _config(tmp_path))
    assert rec["encoder"]["label"] == "pixels" and rec["encoder"]["name"] == "pixels"
    assert _records(catalog, plan, _config(tmp_path)) == [rec]  # found again on resume


def test_empty_shard_is_a_success_with_no_cells(catalog):
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid"], shard=(1, 2))
    assert plan.cells == [] and plan.pairs == 0 and plan.shard == (1, 2)


class _Constant:
    """An encoder whose features are constant: what a broken upgrade of a plugin returns."""

    modality, embed_dim, info = "image", 2, {"weights": "broken"}
    fingerprint = "constant-v2"

    def preprocess(self, samples):
        import torch

        return torch.zeros(len(samples), 2)

    def encode(self, batch):
        return batch


def _versioned_encoder(catalog, version, load):
    """Register 'swap' as provided by plugin 'swapper' at ``version`` (what an upgraded plugin looks like)."""
    from benchmark import EncoderSpec
    from benchmark.plugins import PluginInfo

    catalog.plugins.infos["swapper"] = PluginInfo("swapper", "swapper", "swapper-dist", version, False)
    catalog.specs["encoders"].pop("swap", None)
    catalog.provider.pop(("encoders", "swap"), None)
    catalog.add("encoders", EncoderSpec("swap", "image", load=load), plugin="swapper")


def test_a_plugin_upgrade_reruns_its_cells_instead_of_keeping_stale_numbers(catalog, tmp_path):
    from benchmark.encoders.pixels import PixelsEncoder

    _versioned_encoder(catalog, "1.0", PixelsEncoder)
    plan = make_plan(catalog, ["swap"], ["tiny"], ["centroid"])
    [old] = _records(catalog, plan, _config(tmp_path))
    assert old["metrics"]["top1"] == 1.0
    _versioned_encoder(catalog, "2.0", _Constant)
    [new] = _records(catalog, make_plan(catalog, ["swap"], ["tiny"], ["centroid"]), _config(tmp_path))
    assert new["encoder"]["fingerprint"] == "constant-v2" and new["metrics"]["top1"] == 0.5
    assert new["config_digest"] != old["config_digest"]


def test_changed_weights_without_a_version_bump_rerun_when_the_pair_loads(catalog, tmp_path):
    """Fingerprints are checked for every finished cell of a pair that is loaded anyway."""
    from benchmark.encoders.pixels import PixelsEncoder

    _versioned_encoder(catalog, "1.0", PixelsEncoder)
    [old] = _records(catalog, make_plan(catalog, ["swap"], ["tiny"], ["centroid"]), _config(tmp_path))
    _versioned_encoder(catalog, "1.0", _Constant)  # same version, other weights
    plan = make_plan(catalog, ["swap"], ["tiny"], ["centroid", "centroid[fail=true]"])
    before = calls(catalog)
    ok, failed = _records(catalog, plan, _config(tmp_path))
    assert calls(catalog) == before + 2  # the finished cell reran beside the new one
    assert ok["encoder"]["fingerprint"] == "constant-v2" and ok["metrics"]["top1"] == 0.5
    assert failed["status"] == "error" and old["metrics"]["top1"] == 1.0


def test_predictions_without_labels_name_the_protocol_and_the_fix(catalog, tmp_path):
    from benchmark import ProtocolOutput, ProtocolSpec

    def no_labels(task):
        _, y = task.features("test")
        return ProtocolOutput(predictions=y)

    catalog.add("protocols", ProtocolSpec("nolabels", evaluate=no_labels), plugin="test")
    [rec] = _records(catalog, make_plan(catalog, ["pixels"], ["tiny"], ["nolabels"]), _config(tmp_path))
    assert rec["status"] == "error" and rec["error"]["type"] == "ContractError"
    assert "protocol 'nolabels'" in rec["error"]["message"] and "must also carry the test labels" in rec["error"]["message"]


def test_a_metric_that_breaks_the_schema_is_an_error_record_not_an_ok_number(catalog, tmp_path):
    from benchmark import ProtocolOutput, ProtocolSpec

    def percent(task):
        return ProtocolOutput(metrics={"top1": 85.0})  # a percentage where a fraction belongs

    catalog.add("protocols", ProtocolSpec("percent", evaluate=percent), plugin="test")
    [rec] = _records(catalog, make_plan(catalog, ["pixels"], ["tiny"], ["percent"]), _config(tmp_path))
    assert rec["status"] == "error" and rec["metrics"] == {}
    assert "metrics.top1" in rec["error"]["message"]


def test_a_family_cells_digest_covers_the_plugins_of_the_datasets_inside(monkeypatch):
    """corrupt:digits and shift:digits>mnist5k rerun when the plugin providing digits changes version."""
    import dataclasses

    from benchmark.catalog import Catalog
    from benchmark.plan import config_digest, make_plan

    catalog = Catalog.load()
    plan = make_plan(catalog, ["pixels"], ["digits", "corrupt:digits[kind=jpeg,severity=1]",
                                           "shift:digits>mnist5k"], ["knn"])
    before = [config_digest(c, "fp32", 0, catalog) for c in plan.cells]
    info = catalog.plugins.infos["builtin:vision-datasets"]
    monkeypatch.setitem(catalog.plugins.infos, "builtin:vision-datasets", dataclasses.replace(info, version="999"))
    after = [config_digest(c, "fp32", 0, catalog) for c in plan.cells]
    assert all(b != a for b, a in zip(before, after, strict=True))
