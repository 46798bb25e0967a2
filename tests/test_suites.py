"""Suites: the built-ins resolve to the official full splits, the spec checks its fields, `eval --suite` runs and
tags records, `leaderboard --suite` ranks only over the suite's cells and lists what each encoder lacks."""

from __future__ import annotations

import json

import pytest
from test_board import rec
from test_plugins import plugin_module
from test_records import good

import benchmark.cli as cli
from benchmark.catalog import Catalog
from benchmark.datasets.text import MAX_CHARS
from benchmark.errors import UnknownNameError
from benchmark.leaderboards.board import build_board
from benchmark.leaderboards.suites import resolve_suite
from benchmark.results.record import InvalidRecord, Record
from benchmark.specs import SuiteSpec
from benchmark.testing import catalog_with

SUITE = SuiteSpec("t-digits-v1", datasets=("digits",), protocols=("knn", "knn[k=1]"), aggregation="mean",
                  description="test suite: digits, two kNN settings")


def test_builtin_suites_are_the_official_full_splits():
    catalog = catalog_with()
    vision = resolve_suite(catalog, "offline-vision-v1")
    assert vision.datasets == ("digits", "mnist5k", "fashion-mnist") and vision.protocols == ("knn", "linear", "fewshot")
    assert len(vision.cells) == 9 and vision.spec.aggregation == "borda" and vision.plugin == "builtin:suites"
    fashion = catalog.resolve("datasets", "fashion-mnist")
    assert fashion.options["train_size"] is None and fashion.options["test_size"] is None
    text = resolve_suite(catalog, "offline-text-v1")
    # max_chars is pinned at the default cap, so the labels (what records carry) stay plain
    assert text.datasets == ("r8", "r52", "20newsgroups", "rotten-tomatoes") and MAX_CHARS == 1000
    assert all(catalog.resolve("datasets", d).options["train_size"] is None for d in text.spec.datasets)
    with pytest.raises(UnknownNameError, match="repbench list suites"):
        resolve_suite(catalog, "offline-vision-v9")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"name": "my-suite"}, "end in -v<N>"),
    ({"datasets": ()}, "datasets must be a non-empty tuple"),
    ({"protocols": "knn"}, "protocols must be a non-empty tuple"),
    ({"aggregation": "median"}, "aggregation must be one of"),
    ({"defaults": {"k": 1}}, "suites take no options"),
])
def test_suite_spec_checks_its_fields(kwargs, message):
    fields = {"name": "s-v1", "datasets": ("digits",), "protocols": ("knn",), **kwargs}
    with pytest.raises(ValueError, match=message):
        SuiteSpec(**fields)


def test_records_carry_their_suites_and_round_trip():
    data = {**good(), "suites": [{"name": "offline-vision-v1", "version": 1}]}
    assert Record.from_json(data).to_json() == data
    with pytest.raises(InvalidRecord, match=r"field 'suites\[0\]'"):
        Record.from_json({**good(), "suites": [{"name": "offline-vision-v1", "version": 2}]})


@pytest.fixture
def suite_catalog(monkeypatch):
    catalog = catalog_with(("t", plugin_module("t", register_suites=lambda: [SUITE])))
    monkeypatch.setattr(Catalog, "load", classmethod(lambda cls, plugins=None: catalog))
    return catalog


def test_eval_suite_runs_every_cell_and_tags_the_records(capsys, tmp_path, suite_catalog):
    res = tmp_path / "res"
    common = ["-e", "pixels", "--results", str(res), "--no-cache", "-q"]
    assert cli.main(["eval", "-d", "digits", "-p", "knn", *common]) == 0  # a cell finished outside the suite
    (before,) = [json.loads(p.read_text()) for p in res.glob("*.json")]
    assert "suites" not in before
    args = ["eval", "--suite", "t-digits-v1", *common]
    assert cli.main(args) == 0
    records = [json.loads(p.read_text()) for p in sorted(res.glob("*.json"))]
    assert sorted(r["protocol"]["label"] for r in records) == ["knn", "knn[k=1]"]
    assert all(r["suites"] == [{"name": "t-digits-v1", "version": 1}] for r in records)
    knn = next(r for r in records if r["protocol"]["label"] == "knn")
    assert {k: v for k, v in knn.items() if k != "suites"} == before  # skipped, only tagged
    assert cli.main(args) == 0  # finished cells are skipped (not rerun) and keep exactly one tag
    again = [json.loads(p.read_text()) for p in sorted(res.glob("*.json"))]
    assert [r["created_at"] for r in again] == [r["created_at"] for r in records]
    assert all(r["suites"] == [{"name": "t-digits-v1", "version": 1}] for r in again)
    capsys.readouterr()
    code = cli.main([*args, "--dataset", "mnist5k"])
    assert code == 2 and "--suite t-digits-v1 fixes the datasets and protocols; drop --dataset" in \
        capsys.readouterr().err
    assert cli.main(["eval", "-e", "pixels", "--results", str(res)]) == 2
    assert "needs --dataset (or --suite NAME" in capsys.readouterr().err


def test_leaderboard_suite_ranks_only_its_cells_and_lists_what_is_lacking(capsys, tmp_path, suite_catalog):
    res = tmp_path / "res"
    res.mkdir()
    recs = [rec("pixels", "digits", 0.98), rec("pixels", "digits", 0.97, protocol="knn[k=1]"),
            rec("other", "digits", 0.99),  # lacks digits x knn[k=1]
            rec("pixels", "mnist5k", 0.93)]  # outside the suite: never shown
    for i, r in enumerate(recs):
        (res / f"r{i}.json").write_text(json.dumps(r.to_json()))
    assert cli.main(["leaderboard", "--results", str(res), "--suite", "t-digits-v1"]) == 0
    out = capsys.readouterr().out
    assert "Suite t-digits-v1 (version 1, plugin t), ranked by mean score." in out
    assert "- other lacks digits x knn[k=1]" in out and "mnist5k" not in out
    board = build_board([r for r in recs], suite=resolve_suite(suite_catalog, "t-digits-v1"))
    assert [t.protocol for t in board.tables] == ["knn", "knn[k=1]"]
    assert [r.key for r in board.tables[0].rows] == ["other", "pixels"] and board.tables[0].ranked_by == "mean"
    assert [r.key for r in board.tables[1].rows] == ["pixels"]


def test_list_suites(capsys, suite_catalog):
    assert cli.main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert "t-digits-v1" in out and "offline-vision-v1" in out and "datasets: digits; protocols: knn, knn[k=1]" in out
