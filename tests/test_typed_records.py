"""Records stay one typed object from the moment a cell finishes to the table, and their JSON never changes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from test_plugins import plugin_module

import benchmark.cli as cli
from benchmark.catalog import Catalog
from benchmark.plan import make_plan
from benchmark.results import Record, ResultStore, load_records
from benchmark.results.build import summary_line
from benchmark.results.store import read_json
from benchmark.results.throughput import ThroughputRecord, is_throughput
from benchmark.runner import RunConfig, run_plan
from benchmark.specs import SuiteSpec
from benchmark.testing import catalog_with

import helpers

REPO = Path(__file__).resolve().parents[1]
COMMITTED = sorted((REPO / "leaderboards").rglob("*.json"))


def _config(tmp_path: Path, **kw) -> RunConfig:
    return RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True, **kw)


def test_runner_store_and_loader_exchange_records(tmp_path):
    catalog = catalog_with(("harness", helpers.make_plugin()))
    plan = make_plan(catalog, ["pixels"], ["tiny"], ["centroid", "knn[k=3]"])
    records = run_plan(catalog, plan, _config(tmp_path))
    assert len(records) == 2 and all(isinstance(r, Record) for r in records)
    store = ResultStore(tmp_path / "results")
    finished = store.finished(*plan.cells[0].labels, 0)
    assert isinstance(finished, Record) and finished == records[0]
    loaded = list(load_records(tmp_path / "results"))
    assert all(isinstance(r, Record) for r in loaded) and sorted(r.id for r in loaded) == sorted(r.id for r in records)
    assert list(store) == loaded
    # what is on disk is exactly the typed record's JSON
    for r in records:
        assert json.loads(store.path(r.encoder.label, r.dataset.label, r.protocol.label, 0).read_text()) == r.to_json()
    # a resumed run returns the same typed records without running anything
    assert run_plan(catalog, plan, _config(tmp_path)) == records
    line = summary_line(1, 2, records[0])
    assert line.startswith("[1/2] pixels x tiny x centroid: top1 ") and line.endswith("s)")


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_records_round_trip_byte_for_byte(path: Path):
    data = read_json(path)
    if is_throughput(data):
        typed: Record | ThroughputRecord = ThroughputRecord.from_json(data, str(path))
    elif isinstance(data, dict) and "schema_version" in data and "encoder" in data:
        typed = Record.from_json(data, str(path))
    else:
        pytest.skip("not a record (a board or page data file)")
    text = json.dumps(typed.to_json(), indent=2, sort_keys=False, allow_nan=False) + "\n"
    assert text == path.read_text(encoding="utf-8")


SUITE = SuiteSpec("t-digits-v1", datasets=("digits",), protocols=("knn",))


def test_suite_tags_are_set_when_the_record_is_built_not_by_rewriting_it(tmp_path, monkeypatch):
    catalog = catalog_with(("t", plugin_module("t", register_suites=lambda: [SUITE])))
    monkeypatch.setattr(Catalog, "load", classmethod(lambda cls, plugins=None: catalog))
    writes: Counter[str] = Counter()
    real_write = ResultStore.write

    def counting(self, record):
        writes[record.id] += 1
        return real_write(self, record)

    monkeypatch.setattr(ResultStore, "write", counting)
    results = tmp_path / "res"
    common = ["-e", "pixels[size=4]", "--results", str(results), "--cache-dir", str(tmp_path / "c"), "-q"]
    assert cli.main(["eval", "--suite", "t-digits-v1", *common]) == 0
    [record] = list(load_records(results))
    assert record.suites == [{"name": "t-digits-v1", "version": 1}]
    assert list(writes.values()) == [1]  # written once, tag included
