"""``repbench eval --save-predictions``: files beside each record that rescore to the record's numbers with
other people's tools (pytrec_eval on the TREC run, scipy on the pair CSV, a plain mean on class predictions)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmark.cli import main
from tests.test_task_kinds import write_beir, write_sts


def _eval(tmp_path: Path, *args: str) -> dict[str, Path]:
    code = main(["eval", *args, "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"),
                 "--save-predictions", "-q"])
    assert code == 0
    return {p.name: p for p in (tmp_path / "results").rglob("*") if p.is_file()}


def test_trec_run_rescored_by_pytrec_eval_equals_the_record(tmp_path):
    pytrec_eval = pytest.importorskip("pytrec_eval")
    root = write_beir(tmp_path / "beir")
    files = _eval(tmp_path, "-e", "tfidf[svd=0,max_features=500]", "-d", f"beir:{root}", "-p", "qrels-retrieval")
    [record] = [p for n, p in files.items() if n.endswith(".json")]
    [run_file] = [p for n, p in files.items() if n.endswith(".run")]
    assert run_file.name == record.name[:-len(".json")] + ".run"
    lines = [line.split() for line in run_file.read_text().splitlines()]
    assert all(len(p) == 6 and p[1] == "Q0" and p[5] == "tfidf[max_features=500,svd=0]" for p in lines)
    run: dict[str, dict[str, float]] = {}
    for qid, _, did, _, score, _ in lines:
        run.setdefault(qid, {})[did] = float(score)
    qrels: dict[str, dict[str, int]] = {}
    for line in (root / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        q, d, g = line.split("\t")
        qrels.setdefault(q, {})[d] = int(g)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.5"}).evaluate(run)
    metrics = json.loads(record.read_text())["metrics"]
    assert metrics["ndcg@10"] == pytest.approx(np.mean([r["ndcg_cut_10"] for r in ref.values()]), abs=1e-9)
    assert metrics["recall@5"] == pytest.approx(np.mean([r["recall_5"] for r in ref.values()]), abs=1e-9)


def test_pair_csv_rescored_by_scipy_equals_the_record(tmp_path):
    sts = write_sts(tmp_path / "s.csv")
    files = _eval(tmp_path, "-e", "tfidf[svd=0,max_features=500]", "-d", f"sts:{sts}", "-p", "sts")
    [record] = [p for n, p in files.items() if n.endswith(".json")]
    [pairs] = [p for n, p in files.items() if n.endswith(".pairs.csv")]
    rows = list(csv.DictReader(pairs.open()))
    assert [r["id"] for r in rows] == [f"line{i}" for i in range(2, 8)]
    scores, gold = np.array([float(r["score"]) for r in rows]), np.array([float(r["gold"]) for r in rows])
    assert json.loads(record.read_text())["metrics"]["spearman"] == pytest.approx(
        stats.spearmanr(scores, gold).statistic, abs=1e-12)


def test_class_predictions_rescore_to_top1(tmp_path):
    files = _eval(tmp_path, "-e", "pixels", "-d", "digits", "-p", "knn")
    [record] = [p for n, p in files.items() if n.endswith(".json")]
    [preds] = [p for n, p in files.items() if n.endswith(".predictions.csv")]
    rows = list(csv.DictReader(preds.open()))
    top1 = np.mean([r["prediction"] == r["label"] for r in rows])
    assert json.loads(record.read_text())["metrics"]["top1"] == pytest.approx(top1, abs=1e-12)
