"""Mistakes caught before any work, in one line: unwritable output places, paths and model names that cannot
work, a leaderboard file whose suffix names another format, hf/ offline; and a plugin dataset whose lazy build
raises is that cell's error record, not the end of the sweep."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from benchmark import DatasetSpec, EncoderSpec, hookimpl
from benchmark.cli import main
from benchmark.datasets.base import InMemoryDataset
from benchmark.errors import MissingData, UnavailableWeights, UnknownNameError
from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.testing import catalog_with

from helpers import make_plugin

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc as an unwritable folder")
UNWRITABLE = "/proc/self/repbench-out"  # no process, root included, can create files in /proc


class Mean:
    """A non-fittable encoder (so loading the pair never builds the dataset)."""

    modality, embed_dim, fingerprint, info = "image", 1, "mean-v1", {"weights": "none"}

    def preprocess(self, samples):
        return torch.tensor([float(np.asarray(s, dtype=np.float32).mean()) for s in samples])

    def encode(self, batch):
        return batch[:, None]


def _catalog_with_a_bad_dataset():
    mod = make_plugin()

    def load_bad():
        def build():
            raise ValueError("The least populated class in y has only 1 member, which is too few")
        return InMemoryDataset("bad", "image", ["a", "b"], build)

    register_datasets = mod.register_datasets

    @hookimpl
    def datasets():
        return [*register_datasets(), DatasetSpec("bad", "image", load=load_bad)]

    @hookimpl
    def register_encoders():
        return [EncoderSpec("mean", "image", load=Mean)]

    mod.register_datasets, mod.register_encoders = datasets, register_encoders
    return catalog_with(("p", mod))


def test_a_lazy_dataset_that_fails_to_build_is_its_cells_error_record(tmp_path):
    catalog = _catalog_with_a_bad_dataset()
    plan = make_plan(catalog, ["mean"], ["bad", "tiny"], ["centroid"])
    records = [r.to_json() for r in run_plan(catalog, plan, RunConfig(results_dir=tmp_path, use_cache=False, quiet=True))]
    assert [(r["dataset"]["label"], r["status"]) for r in records] == [("bad", "error"), ("tiny", "ok")]
    assert "least populated class" in records[0]["error"]["message"]
    assert len(list(tmp_path.glob("*.json"))) == 2


@linux_only
@pytest.mark.parametrize("argv, flag", [
    (["eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--results", UNWRITABLE], "--results"),
    (["eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--cache-dir", UNWRITABLE], "--cache-dir"),
    (["pretrain", "--method", "simclr", "--backbone", "timm/resnet18[pretrained=false]", "--dataset", "digits",
      "--budget", "1steps", "--out", UNWRITABLE], "--out"),
    (["leaderboard", "--results", "RESULTS", "--out", f"{UNWRITABLE}/board"], "--out"),
    (["leaderboard", "--results", "RESULTS", "--out", f"{UNWRITABLE}/lb.md"], "--out"),
    (["profile", "-e", "pixels", "--results", UNWRITABLE], "--results"),
    (["throughput", "-e", "pixels", "--results", UNWRITABLE], "--results"),
    (["import", "RESULTS", "--results", UNWRITABLE], "--results"),
    (["features", "-e", "pixels", "-d", "digits", "--out", "feats.npz", "--cache-dir", UNWRITABLE], "--cache-dir"),
])
def test_an_unwritable_output_is_refused_before_any_work(argv, flag, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "RESULTS").mkdir()
    assert main([a for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"repbench: error: {flag} {UNWRITABLE}") and "cannot write" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_missing_paths_and_misspelled_timm_models_are_refused_at_plan_time(tmp_path):
    catalog = catalog_with()
    for dataset in (f"imagefolder:{tmp_path}/pets", f"csv:{tmp_path}/reviews.csv", f"jsonl:{tmp_path}/x.jsonl"):
        with pytest.raises(MissingData, match="no such file or folder"):
            make_plan(catalog, ["pixels"], [dataset], ["knn"])
    with pytest.raises(UnknownNameError, match=r"timm has no model 'resnt18'\. Close matches: resnet18"):
        make_plan(catalog, ["timm/resnt18[pretrained=false]"], ["digits"], ["knn"])
    make_plan(catalog, ["timm/resnet18.a1_in1k"], ["digits"], ["knn"])  # a real name with a tag passes


def _records(folder):
    from test_board import records

    from benchmark.results.store import ResultStore

    store = ResultStore(folder)
    for r in records():
        store.write(r)
    return folder


@pytest.mark.parametrize("suffix, table, first", [(".csv", "board", "schema_version,"), (".json", "board", "{"),
                                                  (".tex", "board", "% "), (".html", "cells", "<")])
def test_leaderboard_out_file_format_follows_its_suffix(suffix, table, first, tmp_path):
    results = _records(tmp_path / "results")
    out = tmp_path / f"lb{suffix}"
    assert main(["leaderboard", "--results", str(results), "--table", table, "--out", str(out)]) == 0
    assert out.read_text().lstrip().startswith(first)


@pytest.mark.parametrize("argv, message", [
    (["--out", "lb.xlsx"], "the suffix .xlsx names no format"),
    (["--out", "lb.csv", "--format", "markdown"], "is csv by its suffix but --format is markdown"),
])
def test_leaderboard_out_suffix_that_cannot_be_honoured_is_refused(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    results = _records(tmp_path / "results")
    assert main(["leaderboard", "--results", str(results), *argv]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.glob("lb.*")) == []


def test_hf_offline_fails_at_once_without_asking_transformers(monkeypatch):
    import transformers

    from benchmark.encoders import base, text

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(text, "hub_offline", lambda: False)
    probes = []
    monkeypatch.setattr(base, "host_reachable", lambda url, timeout=2.0: probes.append(url) or False)

    def never(*args, **kwargs):
        raise AssertionError("transformers must not be asked: it retries for a minute")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", never)
    with pytest.raises(UnavailableWeights, match="cannot be reached: no connection within 2 s") as info:
        text.load_hf_text("repbench-test/no-such-model-xyz")
    assert len(probes) == 1 and "\n" not in str(info.value)
