"""Readers of the on-disk formats embedding tasks come in, each error one line naming the file, line and field.

* A **BEIR folder** (what BEIR, MTEB and most retrieval releases ship): ``corpus.jsonl`` (one JSON object per
  line: ``_id``, ``text``, optional ``title``; a document is ``title + " " + text``, stripped, as BEIR and MTEB
  join them), ``queries.jsonl`` (``_id``, ``text``) and ``qrels/<split>.tsv`` (a header, then
  ``query-id<TAB>corpus-id<TAB>score`` with an integer grade). As BEIR's loader does, only queries judged in the
  split are kept. Optional reranking candidates come from a TREC run file (``qid Q0 docid rank score tag``, a
  first-stage ranking such as BM25's): its top ``depth`` documents per query.
* **Pair files**, ``.tsv`` or ``.csv`` (by suffix; ``.gz`` allowed) with a header naming the columns
  ``sentence1``, ``sentence2`` and ``score`` (STS, any numeric scale) or ``label`` (0/1 pairs), and an optional
  ``id`` column (default: ``line<N>``). TSV is read without quote processing (STS Benchmark's texts hold quotes).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from benchmark.datasets.pairs import LabelledPairs, RetrievalData, ScoredPairs
from benchmark.errors import DataError, MissingData


def _open(path: Path) -> IO[str]:
    if not path.is_file():
        raise MissingData(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with _open(path) as fh:
        for no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path} line {no}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path} line {no}: expected a JSON object, got {type(obj).__name__}")
            yield no, obj


def _field(obj: dict[str, Any], name: str, path: Path, no: int, optional: bool = False) -> str:
    if name not in obj or obj[name] is None:
        if optional:
            return ""
        raise DataError(f"{path} line {no}: no field {name!r}")
    value = obj[name]
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise DataError(f"{path} line {no}: field {name!r} must be a string, got {type(value).__name__}")
    return str(value)


def _id_texts(path: Path, with_title: bool) -> tuple[list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    for no, obj in _jsonl(path):
        i = _field(obj, "_id", path, no)
        if not i:
            raise DataError(f"{path} line {no}: field '_id' is empty")
        if i in seen:
            raise DataError(f"{path} line {no}: field '_id' {i!r} appears twice (first on line {seen[i]}); ids "
                            "must be unique")
        seen[i] = no
        text = _field(obj, "text", path, no)
        if with_title:
            text = (_field(obj, "title", path, no, optional=True) + " " + text).strip()
        ids.append(i)
        texts.append(text)
    return ids, texts


def read_qrels(path: Path, queries: set[str], docs: set[str], corpus: Path, queries_file: Path
               ) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` lines after a header; every id must exist, every score an integer."""
    qrels: dict[str, dict[str, int]] = {}
    with _open(path) as fh:
        for no, line in enumerate(fh, 1):
            parts = line.rstrip("\r\n").split("\t")
            if no == 1 and not (len(parts) >= 3 and parts[2].strip().lstrip("-").isdigit()):
                continue  # the header
            if not line.strip():
                continue
            if len(parts) < 3:
                raise DataError(f"{path} line {no}: expected query-id, corpus-id and score separated by tabs, got "
                                f"{len(parts)} field(s)")
            qid, did, grade = parts[0], parts[1], parts[-1].strip()
            try:
                value = int(grade)
            except ValueError:
                raise DataError(f"{path} line {no}: field 'score' is {grade!r}, not an integer grade") from None
            if qid not in queries:
                raise DataError(f"{path} line {no}: field 'query-id' names query {qid!r}, which is not in "
                                f"{queries_file}")
            if did not in docs:
                raise DataError(f"{path} line {no}: field 'corpus-id' names document {did!r}, which is not in "
                                f"{corpus}")
            if did in qrels.get(qid, {}):
                raise DataError(f"{path} line {no}: ({qid!r}, {did!r}) is judged twice")
            qrels.setdefault(qid, {})[did] = value
    if not qrels:
        raise DataError(f"{path}: no judgments")
    return qrels


def read_run(path: Path, depth: int, queries: set[str], docs: set[str]) -> dict[str, list[str]]:
    """A TREC run file's top ``depth`` documents per query (ranked by score, then rank), as candidate lists."""
    rows: dict[str, list[tuple[float, int, str]]] = {}
    with _open(path) as fh:
        for no, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise DataError(f"{path} line {no}: expected 'qid Q0 docid rank score tag', got {len(parts)} fields")
            qid, _, did, rank, score, _ = parts
            try:
                key = (-float(score), int(rank), did)
            except ValueError:
                raise DataError(f"{path} line {no}: field 'rank' or 'score' is not a number") from None
            if qid not in queries:
                continue  # a run often covers more queries than a split judges
            if did not in docs:
                raise DataError(f"{path} line {no}: field 'docid' names document {did!r}, which is not in the corpus")
            rows.setdefault(qid, []).append(key)
    return {q: list(dict.fromkeys(d for *_, d in sorted(r)))[:depth] for q, r in rows.items()}


def read_beir(folder: str | Path, split: str = "test", candidates: str | None = None, depth: int = 100
              ) -> RetrievalData:
    """A BEIR folder (module doc): the queries judged in ``qrels/<split>.tsv``, the corpus, the judgments, and
    with ``candidates`` (a TREC run file) the top ``depth`` documents of each query to rerank."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MissingData(f"{root}: no such folder; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/")
    corpus, queries_file, qrels_file = root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"
    doc_ids, docs = _id_texts(corpus, with_title=True)
    if not doc_ids:
        raise DataError(f"{corpus}: the corpus is empty; retrieval needs documents")
    query_ids, queries = _id_texts(queries_file, with_title=False)
    qrels = read_qrels(qrels_file, set(query_ids), set(doc_ids), corpus, queries_file)
    keep = [i for i, q in enumerate(query_ids) if q in qrels]
    cands = None
    if candidates is not None:
        cands = read_run(Path(candidates).expanduser(), depth, {query_ids[i] for i in keep}, set(doc_ids))
    sources = {"corpus": str(corpus), "queries": str(queries_file), "qrels": str(qrels_file),
               "candidates": str(candidates)}
    return RetrievalData([query_ids[i] for i in keep], [queries[i] for i in keep], doc_ids, docs, qrels, cands,
                         where=str(root), sources=sources)


def read_pairs(path: str | Path, gold: str, first: str = "sentence1", second: str = "sentence2"
               ) -> ScoredPairs | LabelledPairs:
    """A pair file (module doc); ``gold`` is ``score`` (-> ScoredPairs) or ``label`` (-> LabelledPairs)."""
    file = Path(path).expanduser()
    tsv = ".tsv" in file.suffixes
    if not (tsv or ".csv" in file.suffixes):
        raise DataError(f"{file}: a pair file must end in .tsv or .csv (optionally .gz)")
    ids, a, b, values = [], [], [], []
    with _open(file) as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.DictReader(fh)
        missing = [c for c in (first, second, gold) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{file}: no column {missing[0]!r} in the header {reader.fieldnames}; pair files need "
                            f"columns {first}, {second} and {gold}")
        for row in reader:
            no = reader.line_num
            raw = (row.get(gold) or "").strip()
            try:
                value = float(raw)
            except ValueError:
                raise DataError(f"{file} line {no}: field {gold!r} is {raw!r}, not a number") from None
            if gold == "label" and value not in (0.0, 1.0):
                raise DataError(f"{file} line {no}: field 'label' is {raw!r}; labels must be 0 or 1")
            ids.append(row.get("id") or f"line{no}")
            a.append(row[first] or "")
            b.append(row[second] or "")
            values.append(value)
    if not ids:
        raise DataError(f"{file}: no pairs after the header")
    if gold == "score":
        return ScoredPairs(ids, a, b, np.asarray(values), where=str(file))
    return LabelledPairs(ids, a, b, np.asarray(values, dtype=np.int64), where=str(file))
