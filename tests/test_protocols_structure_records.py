"""cluster, retrieval and labeleff through the harness: plan-time option errors, and valid typed records."""

from __future__ import annotations

import pytest

from benchmark.errors import OptionError
from benchmark.plan import make_plan
from benchmark.results.record import Record
from benchmark.runner import RunConfig, run_plan
from benchmark.testing import catalog_with

import helpers


@pytest.fixture
def catalog():
    return catalog_with(("harness", helpers.make_plugin()))


@pytest.mark.slow
def test_records_are_valid_and_carry_the_primary_metric(catalog, tmp_path):
    protocols = ["cluster[seeds=2]", "retrieval[gallery=test]", "labeleff[shots=1+2+4,draws=2]"]
    plan = make_plan(catalog, ["pixels"], ["tiny[n=60]"], protocols)
    config = RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True)
    records = {r.protocol.name: r.to_json() for r in run_plan(catalog, plan, config)}
    assert {n: r["status"] for n, r in records.items()} == dict.fromkeys(("cluster", "retrieval", "labeleff"), "ok")
    expected = {"cluster": "nmi", "retrieval": "map@r", "labeleff": "auc"}
    for name, rec in records.items():
        typed = Record.from_json(rec, where=name)
        assert typed.metric == expected[name] and 0 <= typed.value <= 1
        lo, hi = typed.ci
        assert lo <= typed.value <= hi
    assert records["labeleff"]["protocol"]["chosen"]["points"] == [1, 2, 4, "all"]
    assert [c["shots"] for c in records["labeleff"]["metrics"]["curve"]] == [1, 2, 4, "all"]
    assert records["retrieval"]["protocol"]["hyperparameters"]["gallery"] == "test"


@pytest.mark.parametrize(("text", "message"), [
    ("cluster[seeds=0]", "protocol 'cluster': option seeds must be an integer >= 1, got 0"),
    ("retrieval[gallery=val]", "protocol 'retrieval': option gallery must be one of train, test, got 'val'"),
    ("labeleff[classifier=svm]", "protocol 'labeleff': option classifier must be one of logreg, knn, got 'svm'"),
    ("labeleff[shots=0+4]", "protocol 'labeleff': option shots must be"),
])
def test_bad_options_fail_at_plan_time_in_one_line(catalog, text, message):
    with pytest.raises(OptionError) as err:
        make_plan(catalog, ["pixels"], ["tiny"], [text])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
