"""MTEB results of the STS, retrieval, pair-classification and reranking tasks, imported with ``repbench import``
from files in MTEB's ``TaskResult`` format, join the measured ``mteb/<Task>`` cell of the same task and split: a
``measured (%)`` and ``difference (pp)`` column in the published section of the markdown board and the page,
never in the measured tables or their ranks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.cli import main
from benchmark.datasets.mteb_tasks import BY_NAME
from benchmark.leaderboards.published_join import join_published
from benchmark.results.record import Record
from benchmark.results.store import load_records
from tests.test_mteb_tasks import STS_ROWS, hub_cache, snapshot_dir, write_jsonl  # noqa: F401  (hub_cache: a fixture)

SPRINT = (["reset my phone", "phone will not charge", "change voicemail pin", "bill too high", "texts fail",
           "roaming abroad"],
          ["how to reset the phone", "battery does not charge", "voicemail password change", "cracked screen",
           "cannot send texts", "activate a sim"], [1, 1, 1, 0, 1, 0])


def mteb_result(task: str, scores: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """A TaskResult as mteb (>= 1.11) writes it."""
    return {"dataset_revision": BY_NAME[task].revision, "evaluation_time": 12.5, "kg_co2_emissions": None,
            "mteb_version": "1.14.12", "scores": scores, "task_name": task}


STS_SCORES = {"cosine_pearson": 0.8203, "cosine_spearman": 0.8203412, "euclidean_pearson": 0.81,
              "euclidean_spearman": 0.8203412, "hf_subset": "default", "languages": ["eng-Latn"],
              "main_score": 0.8203412, "manhattan_pearson": 0.80, "manhattan_spearman": 0.81, "pearson": 0.8203,
              "spearman": 0.8203412}
SPRINT_SCORES = {"cosine_accuracy": 0.9981, "cosine_ap": 0.9412, "cosine_f1": 0.90, "dot_ap": 0.9412,
                 "euclidean_ap": 0.9412, "manhattan_ap": 0.9402, "max_accuracy": 0.9981, "max_ap": 0.9413,
                 "max_f1": 0.9, "hf_subset": "default", "languages": ["eng-Latn"], "main_score": 0.9413}
SCIFACT_SCORES = {"hf_subset": "default", "languages": ["eng-Latn"], "main_score": 0.6451, "map_at_10": 0.59,
                  "mrr_at_10": 0.61, "ndcg_at_10": 0.6451, "recall_at_100": 0.925}


def _setup(hub_cache: Path, tmp_path: Path) -> tuple[Path, Path]:  # noqa: F811
    write_jsonl(snapshot_dir(hub_cache, "STSBenchmark") / "test.jsonl.gz",
                [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in STS_ROWS])
    a, b, labels = SPRINT
    write_jsonl(snapshot_dir(hub_cache, "SprintDuplicateQuestions") / "test.jsonl.gz",
                [{"sentence1": a, "sentence2": b, "labels": labels}])
    results = tmp_path / "results"
    for dataset, protocol in (("mteb/STSBenchmark", "sts"), ("mteb/SprintDuplicateQuestions", "pairclass")):
        assert main(["eval", "-e", "tfidf[svd=0,max_features=500]", "-d", dataset, "-p", protocol, "--results",
                     str(results), "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    files = tmp_path / "mteb-results"
    files.mkdir()
    for task, scores in (("STSBenchmark", {"test": [STS_SCORES], "validation": [{**STS_SCORES, "main_score": 0.85,
                                                                                 "cosine_spearman": 0.85}]}),
                         ("SprintDuplicateQuestions", {"test": [SPRINT_SCORES]}),
                         ("SciFact", {"test": [SCIFACT_SCORES]})):
        (files / f"{task}.json").write_text(json.dumps(mteb_result(task, scores), indent=2))
    return results, files


def _measured(results: Path, task: str) -> Record:
    [rec] = [r for r in load_records(results) if r.origin == "measured"
             and r.dataset.name == f"mteb/{task}"]
    return rec


def test_published_mteb_scores_sit_beside_the_measured_cell_with_the_difference(hub_cache, tmp_path, capsys):  # noqa: F811
    results, files = _setup(hub_cache, tmp_path)
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "before")]) == 0
    before = (tmp_path / "before" / "leaderboard.md").read_text()
    assert main(["import", str(files), "--results", str(results), "--model", "tfidf[max_features=500,svd=0]",
                 "--url", "https://github.com/embeddings-benchmark/results"]) == 0
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "board")]) == 0
    capsys.readouterr()
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    measured_part, _, published_part = text.partition("### Published numbers (imported)")
    assert measured_part.rstrip() == before.rstrip()  # the measured tables and their ranks are untouched
    header = next(line for line in published_part.splitlines() if line.startswith("| encoder"))
    assert "measured (%)" in header and "difference (pp)" in header
    rows = {line.split("|")[2].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in published_part.splitlines() if line.startswith("| tfidf")}
    cols = [c.strip() for c in header.split("|")[1:-1]]
    sts = dict(zip(cols, rows["STSBenchmark"], strict=True))
    spearman = _measured(results, "STSBenchmark").metrics["spearman"]
    assert sts["value (%)"] == "82.03" and sts["measured (%)"] == f"{spearman * 100:.2f}"
    assert sts["difference (pp)"] == f"{(spearman - 0.8203412) * 100:+.2f}"
    sprint = dict(zip(cols, rows["SprintDuplicateQuestions"], strict=True))
    max_ap = _measured(results, "SprintDuplicateQuestions").metrics["max_ap"]
    assert sprint["difference (pp)"] == f"{(max_ap - 0.9413) * 100:+.2f}" and "max_ap vs max_ap" in sprint[
        "measured cell"]
    assert dict(zip(cols, rows["SciFact"], strict=True))["measured (%)"] == "–"  # nothing measured: no join
    val = dict(zip(cols, rows["STSBenchmark[split=validation]"], strict=True))
    assert val["measured (%)"] == "–"  # another split is another cell
    page = (tmp_path / "board" / "index.html").read_text()
    assert "difference (pp)" in page and f"{(spearman - 0.8203412) * 100:+.2f}" in page


def test_the_model_matches_by_name_label_or_hf_name(hub_cache, tmp_path):  # noqa: F811
    results, files = _setup(hub_cache, tmp_path)
    from benchmark.leaderboards.importers import import_mteb

    [pub_test, _] = import_mteb(files / "STSBenchmark.json", model="BAAI/bge-small-en-v1.5")
    measured = _measured(results, "STSBenchmark").to_json()
    as_hf = Record.from_json({**measured, "encoder": {**measured["encoder"], "name": "hf/BAAI/bge-small-en-v1.5",
                                                      "label": "hf/BAAI/bge-small-en-v1.5"}})
    [joined] = join_published([pub_test], [as_hf]).values()
    assert joined.metric == "spearman" and joined.published_key == "cosine_spearman"
    assert joined.measured == measured["metrics"]["spearman"] and joined.published == 0.8203412
    other = Record.from_json({**measured, "encoder": {**measured["encoder"], "name": "hf/other/model",
                                                      "label": "hf/other/model"}})
    assert join_published([pub_test], [other]) == {}
    failed = Record.from_json({**as_hf.to_json(), "dataset": {**measured["dataset"], "split": "validation"}})
    assert join_published([pub_test], [failed]) == {}


def test_every_mteb_task_main_score_is_what_its_protocol_reports_as_primary():
    from benchmark.catalog import Catalog
    from benchmark.datasets.mteb_tasks import TASKS
    from benchmark.leaderboards.published_join import MTEB_METRICS

    catalog = Catalog.load()
    protocol_of = {"sts": "sts", "pairclass": "pairclass", "retrieval": "qrels-retrieval", "rerank": "rerank"}
    for task in TASKS:
        protocol = protocol_of[task.kind]
        metric, keys = MTEB_METRICS[protocol]
        assert task.main_score in keys, task.name
        spec, _ = catalog.get("protocols", protocol)
        assert spec.primary_metric == metric and task.dataset_kind in spec.kinds, task.name
