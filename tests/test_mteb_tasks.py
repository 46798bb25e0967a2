"""MTEB's Hugging Face datasets (``mteb/<Task>``): files written in the formats those repositories hold, in a fake
Hugging Face cache (the snapshot folder of the pinned revision) or a local copy named with ``path=``, loaded and
scored end to end with ``repbench eval``; offline without a copy: one fast line; MTEB's ``ignore_identical_ids``
checked against pytrec_eval."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.datasets.mteb_tasks import BY_NAME, load_task
from benchmark.datasets.pairs import RetrievalData
from benchmark.errors import DataError, MissingData
from tests.test_protocol_sts_pairclass import FieldTask

STS_ROWS = [("A man is playing a guitar.", "A man plays the guitar.", 4.8),
            ("A woman is slicing onions.", "Someone cuts an onion.", 4.2),
            ("A cat sleeps on the mat.", "Stocks fell sharply today.", 0.0),
            ("Two dogs run in a field.", "Dogs are running on grass.", 3.9),
            ("The market rallied.", "A child eats an apple.", 0.4),
            ('He said "hello".', "He greeted them.", 3.0)]


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache that huggingface_hub uses, offline (nothing may be downloaded)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def snapshot_dir(cache: Path, task: str) -> Path:
    """Where huggingface_hub keeps the snapshot of ``task``'s repository at its pinned revision."""
    t = BY_NAME[task]
    folder = cache / f"datasets--{t.repo.replace('/', '--')}" / "snapshots" / t.revision
    folder.mkdir(parents=True)
    return folder


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(text) if path.suffix == ".gz" else text)
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def eval_record(tmp_path: Path, dataset: str, protocol: str, *extra: str) -> dict[str, Any]:
    code = main(["eval", "-e", "tfidf[svd=0,max_features=500]", "-d", dataset, "-p", protocol,
                 "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"), "-q", *extra])
    [path] = (tmp_path / "results").rglob("*.json")
    rec = json.loads(path.read_text())
    assert code == 0 and rec["status"] == "ok", rec.get("error")
    return rec


def test_sts_benchmark_from_the_hub_cache_scores_end_to_end(hub_cache, tmp_path):
    # mteb/stsbenchmark-sts: <split>.jsonl.gz, one pair per line with STS-B's own columns beside the three we use
    snap = snapshot_dir(hub_cache, "STSBenchmark")
    write_jsonl(snap / "test.jsonl.gz", [{"split": "test", "genre": "main-captions", "dataset": "MSRvid",
                                          "year": "2012test", "sid": f"{i:04d}", "score": s, "sentence1": a,
                                          "sentence2": b} for i, (a, b, s) in enumerate(STS_ROWS)])
    write_jsonl(snap / "train.jsonl.gz", [{"score": 1.0, "sentence1": "x", "sentence2": "y"}])
    rec = eval_record(tmp_path, "mteb/STSBenchmark", "sts")
    assert rec["dataset"]["sizes"] == {"pairs": 6} and rec["dataset"]["kind"] == "scored-pairs"
    assert rec["dataset"]["revision"] == BY_NAME["STSBenchmark"].revision and rec["dataset"]["split"] == "test"
    assert rec["dataset"]["mteb_main_score"] == "cosine_spearman"
    data = load_task(BY_NAME["STSBenchmark"]).data
    assert data.first == [r[0] for r in STS_ROWS] and data.scores.tolist() == [r[2] for r in STS_ROWS]


def test_sick_r_as_parquet_under_readme_configs_from_a_local_copy(tmp_path):
    # the hub's parquet layout: README.md's configs name data/<split>-*.parquet
    copy = tmp_path / "sickr"
    write_parquet(copy / "data" / "test-00000-of-00001.parquet",
                  [{"id": str(i), "sentence1": a, "sentence2": b, "score": s} for i, (a, b, s) in enumerate(STS_ROWS)])
    write_parquet(copy / "data" / "validation-00000-of-00001.parquet",
                  [{"id": "v", "sentence1": "a", "sentence2": "b", "score": 1.0}])
    (copy / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: test\n"
                                    "    path: data/test-*\n  - split: validation\n    path: data/validation-*\n---\n"
                                    "# SICK-R\n")
    rec = eval_record(tmp_path, f"mteb/SICK-R[path={copy}]", "sts")
    assert rec["dataset"]["sizes"] == {"pairs": 6} and rec["dataset"]["revision"] is None
    assert load_task(BY_NAME["SICK-R"], path=str(copy)).data.ids == [str(i) for i in range(6)]


CORPUS = [{"_id": "d1", "title": "Cats", "text": "cats purr and sleep all day"},
          {"_id": "d2", "title": "Dogs", "text": "dogs bark and fetch sticks"},
          {"_id": "d3", "title": "", "text": "the stock market fell sharply today"},
          {"_id": "d4", "title": "Kittens", "text": "young cats are called kittens and purr"},
          {"_id": "d5", "title": "", "text": "interest rates and the stock market"}]
QUERIES = [{"_id": "q1", "text": "purring cats"}, {"_id": "q2", "text": "barking dogs"},
           {"_id": "q3", "text": "stock market news"}]
QRELS = [("q1", "d1", 2), ("q1", "d4", 1), ("q2", "d2", 1), ("q3", "d3", 1), ("q3", "d5", 1), ("q3", "d1", 0)]


def test_scifact_as_a_beir_folder_in_the_hub_cache_scores_end_to_end(hub_cache, tmp_path):
    snap = snapshot_dir(hub_cache, "SciFact")
    write_jsonl(snap / "corpus.jsonl", CORPUS)
    write_jsonl(snap / "queries.jsonl", QUERIES + [{"_id": "q9", "text": "train only"}])
    (snap / "qrels").mkdir()
    (snap / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n"
                                                                                      for q, d, g in QRELS))
    (snap / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td2\t1\n")
    (snap / "README.md").write_text("---\nconfigs:\n- config_name: corpus\n  data_files:\n  - split: corpus\n"
                                    "    path: corpus.jsonl\n- config_name: queries\n  data_files:\n"
                                    "  - split: queries\n    path: queries.jsonl\n- config_name: default\n"
                                    "  data_files:\n  - split: train\n    path: qrels/train.tsv\n"
                                    "  - split: test\n    path: qrels/test.tsv\n---\n")
    rec = eval_record(tmp_path, "mteb/SciFact", "qrels-retrieval")
    assert rec["metrics"]["n_queries"] == 3 and rec["dataset"]["sizes"]["corpus"] == 5
    assert rec["metrics"]["recall@100"] == 1.0 and 0 < rec["metrics"]["ndcg@10"] <= 1


def test_nfcorpus_as_parquet_configs_loads_the_same_data_as_jsonl(tmp_path):
    # mteb's newer retrieval layout: corpus/, queries/ and default/ (qrels) parquet configs
    copy = tmp_path / "nfcorpus"
    write_parquet(copy / "corpus" / "corpus-00000-of-00001.parquet", CORPUS)
    write_parquet(copy / "queries" / "queries-00000-of-00001.parquet", QUERIES)
    write_parquet(copy / "default" / "test-00000-of-00001.parquet",
                  [{"query-id": q, "corpus-id": d, "score": g} for q, d, g in QRELS])
    (copy / "README.md").write_text("---\nconfigs:\n- config_name: corpus\n  data_files:\n  - split: corpus\n"
                                    "    path: corpus/corpus-*\n- config_name: default\n  data_files:\n"
                                    "  - split: test\n    path: default/test-*\n- config_name: queries\n"
                                    "  data_files:\n  - split: queries\n    path: queries/queries-*\n---\n")
    data = load_task(BY_NAME["NFCorpus"], path=str(copy)).data
    assert isinstance(data, RetrievalData)
    assert data.doc_ids == [d["_id"] for d in CORPUS] and data.docs[0] == "Cats cats purr and sleep all day"
    assert data.qrels == {"q1": {"d1": 2, "d4": 1}, "q2": {"d2": 1}, "q3": {"d3": 1, "d5": 1, "d1": 0}}
    rec = eval_record(tmp_path, f"mteb/NFCorpus[path={copy}]", "qrels-retrieval")
    assert rec["metrics"]["n_queries"] == 3


def test_bad_parquet_qrels_fail_in_one_line_naming_file_row_and_field(tmp_path):
    copy = tmp_path / "nf"
    write_parquet(copy / "corpus" / "corpus-0.parquet", CORPUS)
    write_parquet(copy / "queries" / "queries-0.parquet", QUERIES)
    write_parquet(copy / "default" / "test-0.parquet", [{"query-id": "q1", "corpus-id": "d9", "score": 1}])
    (copy / "README.md").write_text("no configs\n")
    with pytest.raises(DataError, match=r"test-0.parquet row 1: field 'corpus-id' names document 'd9'") as err:
        _ = load_task(BY_NAME["NFCorpus"], path=str(copy)).data
    assert "\n" not in str(err.value)


def test_sprint_duplicate_questions_one_row_of_lists_scores_end_to_end(hub_cache, tmp_path):
    # mteb/sprintduplicatequestions-pairclassification: a split is ONE line whose columns are lists
    snap = snapshot_dir(hub_cache, "SprintDuplicateQuestions")
    a = ["how do i reset my phone", "my phone will not charge", "change voicemail pin", "bill is too high",
         "cannot send texts", "roaming charges abroad"]
    b = ["reset the phone to factory settings", "battery does not charge", "how to change voicemail password",
         "phone screen cracked", "texts fail to send", "how to activate a new sim"]
    labels = [1, 1, 1, 0, 1, 0]
    write_jsonl(snap / "test.jsonl.gz", [{"sentence1": a, "sentence2": b, "labels": labels}])
    rec = eval_record(tmp_path, "mteb/SprintDuplicateQuestions", "pairclass")
    assert rec["dataset"]["sizes"] == {"pairs": 6} and rec["dataset"]["kind"] == "labelled-pairs"
    data = load_task(BY_NAME["SprintDuplicateQuestions"]).data
    assert data.labels.tolist() == labels and data.second == b and data.ids[0] == "1:0"


def test_pair_lists_of_unequal_length_fail_in_one_line(tmp_path):
    copy = tmp_path / "sprint"
    write_jsonl(copy / "test.jsonl.gz", [{"sent1": ["a", "b"], "sent2": ["c"], "labels": [1, 0]}])
    with pytest.raises(DataError, match=r"test.jsonl.gz line 1: fields 'sentence1', 'sentence2' and 'labels' must "
                                        r"be lists of one length"):
        _ = load_task(BY_NAME["SprintDuplicateQuestions"], path=str(copy)).data


def test_askubuntu_reranking_rows_score_end_to_end(hub_cache, tmp_path):
    # mteb/askubuntudupquestions-reranking: one line per query with lists of positive and negative texts
    snap = snapshot_dir(hub_cache, "AskUbuntuDupQuestions")
    rows = [{"query": "wifi not working after upgrade", "positive": ["wireless stopped working after update"],
             "negative": ["how to install java", "sound not working", "wifi driver for broadcom"]},
            {"query": "install java on ubuntu", "positive": ["how to install java", "java jdk setup"],
             "negative": ["wifi not working", "sound not working"]},
            {"query": "no negatives: skipped, as MTEB does", "positive": ["x"], "negative": []}]
    write_jsonl(snap / "test.jsonl.gz", rows)
    rec = eval_record(tmp_path, "mteb/AskUbuntuDupQuestions", "rerank")
    assert rec["metrics"]["n_queries"] == 2 and 0 < rec["metrics"]["map"] <= 1
    data = load_task(BY_NAME["AskUbuntuDupQuestions"]).data
    assert isinstance(data, RetrievalData) and data.candidates is not None
    by_text = dict(zip(data.docs, data.doc_ids, strict=True))
    assert data.qrels["q1"] == {by_text["how to install java"]: 1, by_text["java jdk setup"]: 1,
                                by_text["wifi not working"]: 0, by_text["sound not working"]: 0}
    assert data.candidates["q0"][1] == data.candidates["q1"][0]  # one text, one document


def test_offline_without_a_copy_fails_at_once_in_one_line(hub_cache, tmp_path, capsys):
    start = time.perf_counter()
    code = main(["eval", "-e", "tfidf", "-d", "mteb/ArguAna", "-p", "qrels-retrieval", "--results",
                 str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"), "-q"])
    took = time.perf_counter() - start
    [path] = (tmp_path / "r").rglob("*.json")
    err = json.loads(path.read_text())["error"]
    assert code != 0 and "\n" not in err["message"], err
    assert "mteb/arguana at revision c22ab2a51041" in err["message"] and "HF_HUB_OFFLINE is set" in err["message"]
    assert "[path=DIR]" in err["message"] and "huggingface-cli download mteb/arguana" in err["message"]
    assert took < 30  # no retries: the time is the harness's, not a download's


def test_a_path_that_is_not_a_folder_is_refused(tmp_path):
    with pytest.raises(MissingData, match=r"dataset 'mteb/QuoraRetrieval': path='.*nowhere' is not a folder"):
        load_task(BY_NAME["QuoraRetrieval"], path=str(tmp_path / "nowhere"))


pytrec_eval = pytest.importorskip("pytrec_eval", reason="pip install pytrec-eval-terrier (the test extra)")


@pytest.mark.parametrize("seed", [0, 1])
def test_ignore_identical_ids_equals_pytrec_eval_on_the_run_without_the_query_itself(seed):
    """ArguAna / Quora: each query is also a corpus document with the same id; MTEB drops it from the ranking."""
    from benchmark.protocols.qrels import evaluate_qrels

    rng = np.random.default_rng(seed)
    n_docs, n_q = 60, 15
    corpus = rng.integers(-1, 2, size=(n_docs, 4)).astype(np.float32)
    doc_ids = [f"a{v}" for v in rng.permutation(500)[:n_docs]]
    picked = rng.choice(n_docs, n_q, replace=False)
    queries = corpus[picked] + rng.normal(scale=0.05, size=(n_q, 4)).astype(np.float32)
    query_ids = [doc_ids[i] for i in picked]  # the query is the document with its id
    qrels = {q: {doc_ids[j]: int(rng.integers(1, 3)) for j in rng.choice(n_docs, 3, replace=False)
                 if doc_ids[j] != q} for q in query_ids}
    data = RetrievalData(query_ids, ["q"] * n_q, doc_ids, ["d"] * n_docs, qrels, ignore_identical_ids=True)
    out = evaluate_qrels(FieldTask(data, {"queries": queries, "corpus": corpus}), ks=[1, 5, 10, 100])
    qids, ids, idx, _ = out.saved["run"]
    assert all(ids[j] != q for q, row in zip(qids, idx, strict=True) for j in row)
    assert idx.shape[1] == n_docs - 1
    cq = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    cc = corpus / np.linalg.norm(corpus, axis=1, keepdims=True).clip(1e-12)
    sims = (cq @ cc.T).astype(np.float32)
    run = {q: {d: float(sims[i, j]) for j, d in enumerate(doc_ids) if d != q} for i, q in enumerate(query_ids)}
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.1,5,10", "recall.10", "map_cut.10"}).evaluate(run)
    for ours, theirs in (("ndcg@10", "ndcg_cut_10"), ("ndcg@1", "ndcg_cut_1"), ("ndcg@5", "ndcg_cut_5"),
                         ("recall@10", "recall_10"), ("map@10", "map_cut_10")):
        assert out.metrics[ours] == pytest.approx(np.mean([ref[q][theirs] for q in query_ids]), abs=1e-6), ours


def test_jsonl_qrels_take_whole_number_grades_and_refuse_others(tmp_path):
    from benchmark.datasets.taskfiles import retrieval_from_files

    corpus, queries = write_jsonl(tmp_path / "corpus.jsonl", CORPUS), write_jsonl(tmp_path / "queries.jsonl", QUERIES)
    good = write_jsonl(tmp_path / "qrels" / "test.jsonl", [{"query-id": "q1", "corpus-id": "d1", "score": 2.0}])
    assert retrieval_from_files(corpus, queries, good, "here").qrels == {"q1": {"d1": 2}}
    bad = write_jsonl(tmp_path / "qrels" / "dev.jsonl", [{"query-id": "q1", "corpus-id": "d1", "score": 0.5}])
    with pytest.raises(DataError, match=r"dev.jsonl line 1: field 'score' is '0.5', not an integer grade"):
        retrieval_from_files(corpus, queries, bad, "here")
