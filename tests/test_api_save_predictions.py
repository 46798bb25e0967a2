"""``repbench.evaluate(..., save_predictions=True)`` writes the files ``repbench eval --save-predictions`` writes,
byte for byte, beside each record; without a results folder it is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

import repbench
from benchmark.cli import main
from benchmark.errors import OptionError
from tests.test_task_kinds import write_beir, write_sts

ENCODER = "tfidf[svd=0,max_features=500]"


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name.endswith(suffixes)}


def test_api_writes_the_prediction_files_of_the_cli(tmp_path):
    datasets = [f"beir:{write_beir(tmp_path / 'beir')}", f"sts:{write_sts(tmp_path / 's.tsv')}"]
    records = repbench.evaluate(ENCODER, datasets, ["qrels-retrieval", "sts"], results_dir=tmp_path / "api",
                                cache_dir=tmp_path / "cache", save_predictions=True)
    assert [r.status for r in records] == ["ok", "ok"]
    assert main(["eval", "-e", ENCODER, "-d", ",".join(datasets), "-p", "qrels-retrieval,sts", "--results",
                 str(tmp_path / "cli"), "--cache-dir", str(tmp_path / "cache"), "--save-predictions", "-q"]) == 0
    api, cli = (_files(tmp_path / d, (".run", ".csv")) for d in ("api", "cli"))
    assert sorted(api) == sorted(cli) and len(api) == 2
    assert sum(n.endswith(".run") for n in api) == 1 and sum(n.endswith(".pairs.csv") for n in api) == 1
    assert api == cli
    assert _files(tmp_path / "api", (".json",)).keys() == _files(tmp_path / "cli", (".json",)).keys()


def test_api_class_predictions_and_no_files_by_default(tmp_path):
    repbench.evaluate("pixels", ["digits"], ["knn"], results_dir=tmp_path / "on", save_predictions=True)
    assert len(_files(tmp_path / "on", (".predictions.csv",))) == 1
    repbench.evaluate("pixels", ["digits"], ["knn"], results_dir=tmp_path / "off")
    assert _files(tmp_path / "off", (".csv", ".run")) == {}


def test_save_predictions_without_a_results_folder_is_refused(tmp_path):
    with pytest.raises(OptionError, match="save_predictions=True needs results_dir="):
        repbench.evaluate("pixels", ["digits"], ["knn"], save_predictions=True)
