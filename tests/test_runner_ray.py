"""The Ray executor: what the driver submits (unit), and a real local Ray instance (slow)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import ray_helpers

from benchmark.cli import main
from benchmark.errors import OptionError
from benchmark.options import Requested
from benchmark.plan import config_digest, make_plan
from benchmark.results import ResultStore
from benchmark.runner import RunConfig, finished_records, run_plan
from benchmark.runner_ray import pair_jobs, run_pair_job, run_plan_ray, task_device
from benchmark.testing import catalog_with

import helpers


def _config(tmp_path, **kw):
    return RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True, **kw)


def _silent(msg: str) -> None:
    pass


# --- the driver's decisions, without Ray ---------------------------------------------------------------------

def test_a_rerun_submits_only_the_cells_without_a_finished_record(tmp_path):
    """A driver killed after some records arrived: the rerun's tasks hold only the cells still missing."""
    catalog = catalog_with(("harness", helpers.make_plugin()))
    plan = make_plan(catalog, ["pixels"], ["tiny", "tiny[n=60]"], ["centroid", "knn[k=5]"])
    config = _config(tmp_path)
    first = run_plan(catalog, plan, config)  # the records that had arrived ...
    store = ResultStore(config.results_dir)
    store.path("pixels", "tiny[n=60]", "knn[k=5]", 0).unlink()  # ... all but this one

    def jobs(cfg: RunConfig = config):
        return pair_jobs(plan, finished_records(catalog, plan, cfg, store, "fp32", _silent))

    [job] = jobs()
    assert job.encoder == Requested("pixels", {"size": None, "mode": "auto"})
    assert job.dataset == Requested("tiny", {"n": 60, "size": 6, "seed": 0, "classes": 2})
    assert [p.name for p in job.protocols] == ["centroid", "knn"]
    assert job.indices == (2, 3) and job.finished == (first[2], None)
    store.write(first[3])
    assert jobs() == []
    assert [j.indices for j in jobs(_config(tmp_path, force=True))] == [(0, 1), (2, 3)]


def test_the_task_body_resolves_the_cells_again_and_makes_the_local_executors_records(tmp_path):
    """What a worker does with a job (run here, outside Ray): its own catalog, the same cells and numbers."""
    catalog = catalog_with()
    plan = make_plan(catalog, ["pixels[size=4]"], ["digits[test_fraction=0.5]"], ["knn[k=5]"])
    [local] = [r.to_json() for r in run_plan(catalog, plan, _config(tmp_path / "local"))]
    [job] = pair_jobs(plan, [None])
    [(index, typed)] = run_pair_job(job, _config(tmp_path / "ray"))
    rec = typed.to_json()
    assert index == 0 and ray_helpers.comparable(rec) == ray_helpers.comparable(local)
    assert rec["config_digest"] == config_digest(plan.cells[0], "fp32", 0, catalog)
    assert rec["environment"]["executor"]["name"] == "ray" and "executor" not in local["environment"]
    assert not (tmp_path / "ray" / "results").exists()  # workers write nothing: the driver does


def test_each_task_asks_for_a_gpu_exactly_when_cuda_is_wanted():
    assert task_device(None, 0) == ("cpu", 0) and task_device("auto", 0) == ("cpu", 0)
    assert task_device(None, 8) == ("cuda", 1) and task_device("cuda", 2) == ("cuda", 1)
    assert task_device("cpu", 8) == ("cpu", 0)
    with pytest.raises(OptionError, match="Ray gives each task its own GPU; use --device cuda"):
        task_device("cuda:1", 8)
    with pytest.raises(OptionError, match="no GPUs"):
        task_device("cuda", 0)


def test_ray_address_without_the_ray_executor_is_refused(tmp_path, capsys):
    code = main(["eval", "-e", "pixels", "-d", "digits", "--ray-address", "auto", "--results", str(tmp_path)])
    assert code == 2 and "--ray-address is for --executor ray" in capsys.readouterr().err


# --- a real local Ray instance ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    with ray_helpers.ray_environment() as root:
        ray = ray_helpers.import_ray()
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=root, _node_ip_address="127.0.0.1",
                 object_store_memory=ray_helpers.OBJECT_STORE, log_to_driver=False)
        yield ray


@pytest.mark.slow
def test_cli_runs_the_grid_as_ray_tasks_and_a_rerun_skips_finished_cells(local_ray, tmp_path, capsys):
    results = tmp_path / "results"
    argv = ["eval", "-e", "pixels", "-d", "digits", "-p", "knn,linear", "--executor", "ray",
            "--ray-address", "auto", "--results", str(results), "--cache-dir", str(tmp_path / "cache"), "-q"]
    assert main(argv) == 0
    files = sorted(results.glob("*.json"))
    records = [json.loads(f.read_text()) for f in files]
    assert [r["status"] for r in records] == ["ok", "ok"]
    node = local_ray.get_runtime_context().get_node_id()
    assert {r["environment"]["executor"]["node_id"] for r in records} == {node}
    # one task per pair: the second protocol found the features extracted by the first, in the same task
    assert sorted(r["timings"]["features_cached"]["train"] for r in records) == [False, False]
    assert sum(bool(r["timings"]["features_s"]) for r in records) == 1
    # a driver killed after the first record: the rerun submits the other cell only
    files[1].unlink()
    assert main(argv) == 0
    assert json.loads(files[0].read_text()) == records[0]
    again = json.loads(files[1].read_text())
    task_id = again["environment"]["executor"]["task_id"]
    assert task_id != records[1]["environment"]["executor"]["task_id"] and again["metrics"] == records[1]["metrics"]
    assert main(argv) == 0 and [json.loads(f.read_text()) for f in files] == [records[0], again]


@pytest.mark.slow
def test_a_task_that_fails_as_a_whole_gives_error_records_and_the_rest_finish(local_ray, tmp_path):
    # 'tiny' exists in the driver's catalog only: the workers' own catalogs (installed plugins) cannot resolve it
    catalog = catalog_with(("harness", helpers.make_plugin()))
    plan = make_plan(catalog, ["pixels"], ["tiny", "digits"], ["knn"])
    bad, good = [r.to_json() for r in run_plan_ray(catalog, plan, _config(tmp_path))]
    assert bad["status"] == "error" and bad["error"]["type"] == "UnknownNameError"
    assert "unknown dataset 'tiny'" in bad["error"]["message"] and "RayTaskError" in bad["error"]["traceback"]
    assert bad["environment"]["executor"] == {"name": "ray", "node_id": None, "hostname": None}
    assert good["status"] == "ok" and good["metrics"]["top1"] > 0.9
    on_disk = sorted(json.loads(f.read_text())["id"] for f in (tmp_path / "results").glob("*.json"))
    assert on_disk == sorted([bad["id"], good["id"]])


@pytest.mark.slow
def test_a_lost_worker_is_retried_and_one_lost_on_every_try_gives_error_records(local_ray, tmp_path):
    catalog = catalog_with()
    plan = make_plan(catalog, ["pixels[size=4]"], ["digits[seed=1]", "digits[seed=2]", "digits"], ["knn[k=5]"])
    once, always, never = [r.to_json() for r in run_plan_ray(catalog, plan, _config(tmp_path), max_retries=1,
                                                             task=ray_helpers.losing_worker)]
    assert once["status"] == "ok" and never["status"] == "ok"
    assert always["status"] == "error" and always["error"]["type"] == "WorkerCrashedError"
    lost = sorted(p.name for p in Path(os.environ["RAY_TMPDIR"]).glob("lost-*"))  # the workers that died
    assert lost == ["lost-digits[seed=1,test_fraction=0.3]", "lost-digits[seed=2,test_fraction=0.3]"]
