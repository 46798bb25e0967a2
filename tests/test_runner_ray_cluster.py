"""The Ray executor on a simulated two-node cluster (ray.cluster_utils.Cluster, loopback): pairs spread over
both nodes, failing cells isolated, and the records of the in-process executor."""

from __future__ import annotations

import json

import pytest
import ray_helpers

from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.runner_ray import run_plan_ray
from benchmark.testing import catalog_with

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nodes():
    """A head node and a worker node, one CPU each: two tasks at a time run on different nodes."""
    with ray_helpers.ray_environment():
        ray = ray_helpers.import_ray()
        from ray.cluster_utils import Cluster

        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "include_dashboard": False, "node_ip_address": "127.0.0.1",
            "object_store_memory": ray_helpers.OBJECT_STORE})
        try:
            cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", object_store_memory=ray_helpers.OBJECT_STORE)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            yield ray
        finally:
            ray.shutdown()
            cluster.shutdown()


def test_the_grid_runs_on_both_nodes_isolates_failures_and_matches_the_local_executor(two_nodes, tmp_path):
    catalog = catalog_with()
    # per pair: two good cells and one whose option fails at run time (k above the 898 train samples); the
    # imagefolder pairs fail to load (the folder exists, so the plan accepts it, but has no train/ or test/), so all
    # their cells fail
    (tmp_path / "no-classes").mkdir()
    plan = make_plan(catalog, ["pixels", "pixels[size=4]"],
                     ["digits[test_fraction=0.5]", f"imagefolder:{tmp_path / 'no-classes'}"],
                     ["knn", "knn[k=2000]", "linear[Cs=0.1+1.0]"])
    ray_config = RunConfig(results_dir=tmp_path / "ray", use_cache=False, quiet=True)
    records = [r.to_json() for r in run_plan_ray(catalog, plan, ray_config)]
    local = [r.to_json() for r in run_plan(catalog, plan, RunConfig(results_dir=tmp_path / "local", use_cache=False,
                                                                   quiet=True))]

    assert [ray_helpers.comparable(r) for r in records] == [ray_helpers.comparable(r) for r in local]
    status = {(r["encoder"]["label"], r["dataset"]["label"], r["protocol"]["label"]): r["status"] for r in records}
    assert [k for k, v in status.items() if v == "ok"] == [
        ("pixels", "digits[test_fraction=0.5]", "knn"), ("pixels", "digits[test_fraction=0.5]", "linear[Cs=0.1+1.0]"),
        ("pixels[size=4]", "digits[test_fraction=0.5]", "knn"),
        ("pixels[size=4]", "digits[test_fraction=0.5]", "linear[Cs=0.1+1.0]")]
    by_type = sorted({r["error"]["type"] for r in records if r["error"]})
    assert by_type == ["MissingData", "OptionError"]
    # every record came from a worker (none was made by the driver for a lost task), on both nodes
    nodes = {node["NodeID"] for node in two_nodes.nodes() if node["Alive"]}
    assert len(nodes) == 2 and {r["environment"]["executor"]["node_id"] for r in records} == nodes
    # the driver wrote each record, atomically, in the results folder of this machine
    on_disk = {json.loads(f.read_text())["id"]: json.loads(f.read_text()) for f in (tmp_path / "ray").glob("*.json")}
    assert on_disk == {r["id"]: r for r in records}
