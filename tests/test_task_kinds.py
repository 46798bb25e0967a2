"""Task kinds through the harness: plan-time kind checks, BEIR folders and STS / pair files written in their real
formats, one-line errors naming file and field, and the offline derived tasks end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.catalog import Catalog
from benchmark.errors import DataError, OptionError
from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.specs import DatasetSpec, ProtocolSpec


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def _config(tmp_path: Path) -> RunConfig:
    return RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True)


def write_beir(root: Path, qrels: str | None = None, corpus: list[dict] | None = None) -> Path:
    """A small BEIR folder: 6 documents (titles + texts), 3 queries, graded qrels with a header."""
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = corpus if corpus is not None else [
        {"_id": "d1", "title": "Cats", "text": "cats purr and sleep all day"},
        {"_id": "d2", "title": "Dogs", "text": "dogs bark and fetch sticks"},
        {"_id": "d3", "title": "", "text": "the stock market fell sharply today"},
        {"_id": "d4", "title": "Kittens", "text": "young cats are called kittens and purr"},
        {"_id": "d5", "text": "interest rates and the stock market"},
        {"_id": "d6", "title": "Puppies", "text": "young dogs are puppies that bark"},
    ]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    queries = [{"_id": "q1", "text": "purring cats"}, {"_id": "q2", "text": "barking dogs"},
               {"_id": "q3", "text": "stock market news"}, {"_id": "q4", "text": "never judged"}]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text(qrels if qrels is not None else
                                             "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td4\t1\nq2\td2\t2\n"
                                             "q2\td6\t1\nq3\td3\t1\nq3\td5\t1\nq3\td1\t0\n")
    return root


def write_sts(path: Path, scores: list[str] | None = None) -> Path:
    rows = [("a cat sleeps", "a cat is sleeping", "4.8"), ("a dog barks", "the dog is barking", "4.5"),
            ("a man plays guitar", "stocks fell today", "0.2"), ('he said "hi"', "she waved", "1.5"),
            ("kittens purr", "cats purr", "3.9"), ("markets rallied", "the market rose", "4.0")]
    scores = scores or [r[2] for r in rows]
    sep = "\t" if ".tsv" in path.suffixes else ","
    lines = [sep.join(("sentence1", "sentence2", "score"))]
    lines += [sep.join((a, b, s)) if sep == "\t" else f'"{a.replace(chr(34), 2 * chr(34))}","{b}",{s}'
              for (a, b, _), s in zip(rows, scores, strict=False)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_kinds_default_to_classification_and_are_checked():
    spec = ProtocolSpec("p", evaluate=lambda task: None)
    assert spec.kinds == ("classification",)
    assert DatasetSpec("d", "text", load=lambda: None).kind == "classification"
    with pytest.raises(ValueError, match="task kinds"):
        DatasetSpec("d", "text", load=lambda: None, kind="graph")


def test_a_protocol_asked_for_a_kind_it_does_not_accept_fails_at_plan_time(catalog, tmp_path):
    sts = write_sts(tmp_path / "s.tsv")
    with pytest.raises(OptionError, match="protocol 'knn' evaluates classification datasets, but 'sts:.*' is a "
                                          "scored-pairs dataset"):
        make_plan(catalog, ["tfidf"], [f"sts:{sts}"], ["knn"])
    with pytest.raises(OptionError, match="protocol 'sts' evaluates scored-pairs datasets, but 'r8'"):
        make_plan(catalog, ["tfidf"], ["r8"], ["sts"])
    plan = make_plan(catalog, ["tfidf"], ["r8", f"sts:{sts}"], ["knn", "sts"])  # mixed: the matching cells run
    assert [(c.dataset.label, c.protocol.label) for c in plan.cells] == [("r8", "knn"), (f"sts:{sts}", "sts")]
    assert len(plan.skipped_kind) == 2


@pytest.mark.parametrize("suffix", [".tsv", ".csv"])
def test_sts_file_scores_end_to_end(catalog, tmp_path, suffix):
    sts = write_sts(tmp_path / f"pairs{suffix}")
    [rec] = [r.to_json() for r in run_plan(catalog, make_plan(catalog, ["tfidf[svd=0,max_features=500]"], [f"sts:{sts}"],
                                                              ["sts"]), _config(tmp_path))]
    assert rec["status"] == "ok", rec["error"]
    assert -1 <= rec["metrics"]["spearman"] <= 1 and rec["metrics"]["n_pairs"] == 6
    assert rec["dataset"]["kind"] == "scored-pairs" and rec["dataset"]["sizes"] == {"pairs": 6}
    assert rec["encoder"]["fields"] == {"sentence1": {"role": "none", "prompt": None},
                                        "sentence2": {"role": "none", "prompt": None}}


def test_beir_folder_scores_end_to_end(catalog, tmp_path):
    root = write_beir(tmp_path / "beir")
    recs = run_plan(catalog, make_plan(catalog, ["tfidf[svd=0,max_features=500]"], [f"beir:{root}"], ["qrels-retrieval"]),
                    _config(tmp_path))
    [rec] = [r.to_json() for r in recs]
    assert rec["status"] == "ok", rec["error"]
    m = rec["metrics"]
    assert m["n_queries"] == 3 and rec["dataset"]["sizes"]["queries"] == 3  # q4 is not judged: not kept
    assert 0 < m["ndcg@10"] <= 1 and m["recall@100"] == 1.0  # a 6-document corpus is retrieved in full


@pytest.mark.parametrize("qrels,match", [
    ("query-id\tcorpus-id\tscore\nq1\td9\t1\n", r"test.tsv line 2: field 'corpus-id' names document 'd9'"),
    ("query-id\tcorpus-id\tscore\nq7\td1\t1\n", r"test.tsv line 2: field 'query-id' names query 'q7'"),
    ("query-id\tcorpus-id\tscore\nq1\td1\thigh\n", r"test.tsv line 2: field 'score' is 'high', not an integer"),
])
def test_bad_qrels_fail_in_one_line_naming_file_and_field(tmp_path, qrels, match):
    from benchmark.datasets.taskfiles import read_beir

    with pytest.raises(DataError, match=match) as err:
        read_beir(write_beir(tmp_path / "b", qrels=qrels))
    assert "\n" not in str(err.value)


def test_bad_corpus_and_pair_files_fail_in_one_line(tmp_path):
    from benchmark.datasets.taskfiles import read_beir, read_pairs

    with pytest.raises(DataError, match=r"corpus.jsonl: the corpus is empty"):
        read_beir(write_beir(tmp_path / "e", corpus=[]))
    dup = [{"_id": "d1", "text": "a"}, {"_id": "d1", "text": "b"}]
    with pytest.raises(DataError, match=r"corpus.jsonl line 2: field '_id' 'd1' appears twice"):
        read_beir(write_beir(tmp_path / "d", corpus=dup))
    bad = write_sts(tmp_path / "s.tsv", scores=["1", "2", "n/a", "3", "4", "5"])
    with pytest.raises(DataError, match=r"s.tsv line 4: field 'score' is 'n/a', not a number"):
        read_pairs(bad, "score")


@pytest.mark.offline_text
@pytest.mark.slow
def test_offline_derived_retrieval_task_runs_from_the_cli(tmp_path, capsys):
    from benchmark.cli import main

    code = main(["eval", "-e", "tfidf", "-d", "20ng-lead-retrieval-v1[n_queries=200]", "-p", "qrels-retrieval",
                 "--results", str(tmp_path / "results"), "--cache-dir", str(tmp_path / "cache"), "-q"])
    assert code == 0
    [path] = (tmp_path / "results").rglob("*.json")
    rec = json.loads(path.read_text())
    assert rec["status"] == "ok" and rec["metrics"]["n_queries"] == 200
    assert 0.05 < rec["metrics"]["ndcg@10"] < 1 and rec["dataset"]["sizes"]["corpus"] > 5000


def test_suite_cells_pair_each_protocol_with_the_kinds_it_accepts(catalog):
    from benchmark.leaderboards.suites import resolve_suite

    suite = resolve_suite(catalog, "offline-text-v2")
    kinds = {d.label: d.spec.kind for d in (catalog.resolve("datasets", s) for s in suite.spec.datasets)}
    accepts = {p: catalog.resolve("protocols", p).spec.kinds for p in suite.protocols}
    assert all(kinds[d] in accepts[p] for _, d, p in suite.cells)
    assert {p for _, _, p in suite.cells} == set(suite.protocols)  # every protocol has cells
    v1 = resolve_suite(catalog, "offline-text-v1")
    assert set(v1.cells) < set(suite.cells)  # v2 = v1's classification cells plus the embedding tasks


@pytest.mark.offline_text
@pytest.mark.slow
def test_derived_20ng_tasks_are_built_as_documented(catalog):
    from benchmark.datasets.pairs import LabelledPairs, RetrievalData, ScoredPairs

    rerank = catalog.resolve("datasets", "20ng-lead-rerank-v1[n_queries=50]").load()
    data = rerank.data
    assert isinstance(data, RetrievalData) and data.candidates is not None and len(data.query_ids) == 50
    for qid, query in zip(data.query_ids, data.queries, strict=True):
        [(doc, grade)] = data.qrels[qid].items()
        assert grade == 1 and doc in data.candidates[qid] and len(data.candidates[qid]) == 20
        assert len(query.split()) == 8
    again = catalog.resolve("datasets", "20ng-lead-rerank-v1[n_queries=50]").load()
    assert again.fingerprint == rerank.fingerprint  # seeded: the same task every time
    pairs = catalog.resolve("datasets", "20ng-halves-pairs-v1[n_pairs=100]").load().data
    assert isinstance(pairs, LabelledPairs) and pairs.labels.sum() == 50
    sts = catalog.resolve("datasets", "20ng-halves-sts-v1[n_pairs=90]").load().data
    assert isinstance(sts, ScoredPairs) and sorted(set(sts.scores.tolist())) == [0.0, 1.0, 2.0]
    assert catalog.resolve("datasets", "20ng-halves-sts-v1[n_pairs=90,seed=1]").load().fingerprint != \
        catalog.resolve("datasets", "20ng-halves-sts-v1[n_pairs=90]").load().fingerprint


def test_pair_file_with_labels_scores_end_to_end(catalog, tmp_path):
    path = tmp_path / "dupes.tsv"
    rows = [("id", "sentence1", "sentence2", "label"), ("a", "how do cats purr", "why do cats purr", "1"),
            ("b", "how do cats purr", "stock prices fell", "0"), ("c", "dogs bark loudly", "loud barking dogs", "1"),
            ("d", "dogs bark loudly", "interest rates rose", "0")]
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n")
    [rec] = [r.to_json() for r in run_plan(catalog, make_plan(catalog, ["tfidf[svd=0,max_features=500]"],
                                                              [f"pairs:{path}"], ["pairclass"]), _config(tmp_path))]
    assert rec["status"] == "ok", rec["error"]
    assert rec["dataset"]["kind"] == "labelled-pairs" and rec["metrics"]["n_pairs"] == 4
    assert rec["metrics"]["cosine_accuracy"] == 1.0  # the duplicates share words, the others none
    bad = tmp_path / "bad.tsv"
    bad.write_text("sentence1\tsentence2\tlabel\nx\ty\t2\n")
    from benchmark.datasets.taskfiles import read_pairs

    with pytest.raises(DataError, match=r"bad.tsv line 2: field 'label' is '2'; labels must be 0 or 1"):
        read_pairs(bad, "label")
