"""A pretraining run is named by its content (method, backbone, data, seed, digest), never by where its folder
sits: ``run:<absolute path>``, ``run:runs/<name>``, ``run:<name>`` (found under ./runs) and a moved copy all
resolve to one encoder; a folder that is not a finished run is refused when the plan is made."""

from __future__ import annotations

import json
import shutil

import pytest
from test_pretrain_runs import _plugin, _request

from benchmark.errors import MissingData
from benchmark.methods.runs import pretrain
from benchmark.plan import make_plan
from benchmark.testing import catalog_with


@pytest.fixture
def catalog():
    return catalog_with(("t", _plugin()))


@pytest.mark.slow
def test_every_way_of_naming_a_run_is_one_encoder(catalog, tmp_path, monkeypatch):
    import benchmark.catalog

    monkeypatch.setattr(benchmark.catalog.Catalog, "load", classmethod(lambda cls, plugins=None: catalog))
    monkeypatch.chdir(tmp_path)
    folder = pretrain(catalog, _request(catalog), tmp_path / "runs")
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(folder, moved)
    names = {catalog.resolve("encoders", f"run:{where}").label
             for where in (folder, f"runs/{folder.name}", folder.name, moved, f"{folder}/")}
    assert names == {f"run:{folder.name}"}
    assert str(tmp_path) not in next(iter(names))
    encoder = catalog.resolve("encoders", f"run:{folder.name}").load()  # ./runs/<name> loads too
    assert encoder.info["pretraining"]["method"] == "tiny"


def test_a_folder_that_is_not_a_finished_run_is_refused_at_plan_time(catalog, tmp_path):
    with pytest.raises(MissingData, match="not a repbench run folder"):
        make_plan(catalog, [f"run:{tmp_path}"], ["tiny"], ["centroid"])
    (tmp_path / "run.json").write_text(json.dumps({"kind": "pretraining", "status": "running"}))
    with pytest.raises(MissingData, match="has not finished training"):
        make_plan(catalog, [f"run:{tmp_path}"], ["tiny"], ["centroid"])
