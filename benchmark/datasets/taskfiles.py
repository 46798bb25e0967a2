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
* The same records as **JSON lines or Parquet** (what Hugging Face dataset repos hold; :func:`records` reads
  ``.jsonl`` / ``.json`` lines, optionally ``.gz``, and ``.parquet`` by suffix): a corpus or queries file with
  ``_id`` / ``title`` / ``text``, qrels with ``query-id`` / ``corpus-id`` / ``score``, pairs with
  ``sentence1`` / ``sentence2`` / ``score`` or ``label``. :func:`retrieval_from_files` and :func:`pairs_from_rows`
  build the containers from them with the checks and messages of the BEIR and pair-file readers above
  (:mod:`benchmark.datasets.mteb_tasks` reads MTEB's Hugging Face datasets through them).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from benchmark.datasets.pairs import LabelledPairs, RetrievalData, ScoredPairs
from benchmark.errors import DataError, MissingData, MissingDependency


def _open(path: Path) -> IO[str]:
    if not path.is_file():
        raise MissingData(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


JSON_SUFFIXES = (".jsonl", ".json")


def unit(path: Path) -> str:
    """What a position in ``path`` is called in messages: a Parquet file has rows, a text file lines."""
    return "row" if path.suffix == ".parquet" else "line"


def records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based position, object) for each record of a JSON-lines (``.jsonl`` / ``.json``, optionally ``.gz``)
    or Parquet file, chosen by suffix."""
    if path.suffix == ".parquet":
        yield from _parquet(path)
    else:
        yield from _jsonl(path)


def _parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise MissingData(f"{path}: no such file")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependency(f"{path}: reading Parquet files needs pyarrow: pip install 'repbench[hf-datasets]'"
                                ) from None

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    yield from enumerate(table.to_pylist(), 1)


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
        raise DataError(f"{path} {unit(path)} {no}: no field {name!r}")
    value = obj[name]
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise DataError(f"{path} {unit(path)} {no}: field {name!r} must be a string, got {type(value).__name__}")
    return str(value)


def id_texts(path: Path, with_title: bool) -> tuple[list[str], list[str]]:
    """Ids and texts of a corpus (``with_title``: title + " " + text) or queries file, in file order."""
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    where = unit(path)
    for no, obj in records(path):
        i = _field(obj, "_id", path, no)
        if not i:
            raise DataError(f"{path} {where} {no}: field '_id' is empty")
        if i in seen:
            raise DataError(f"{path} {where} {no}: field '_id' {i!r} appears twice (first on {where} {seen[i]}); "
                            "ids must be unique")
        seen[i] = no
        text = _field(obj, "text", path, no)
        if with_title:
            text = (_field(obj, "title", path, no, optional=True) + " " + text).strip()
        ids.append(i)
        texts.append(text)
    return ids, texts


def read_qrels(path: Path, queries: set[str], docs: set[str], corpus: Path, queries_file: Path
               ) -> dict[str, dict[str, int]]:
    """``query-id<TAB>corpus-id<TAB>score`` lines after a header (or JSON-lines / Parquet records with those
    fields); every id must exist, every score an integer."""
    qrels: dict[str, dict[str, int]] = {}
    if path.suffix == ".parquet" or any(x in JSON_SUFFIXES for x in path.suffixes):
        for no, obj in records(path):
            grade = obj.get("score")
            if isinstance(grade, float) and grade.is_integer():
                grade = int(grade)  # a whole-number float column (1.0) is a grade; 0.5 is not
            add_judgment(qrels, _field(obj, "query-id", path, no), _field(obj, "corpus-id", path, no),
                         grade if isinstance(grade, int) and not isinstance(grade, bool) else str(grade),
                         f"{path} {unit(path)} {no}", queries, docs, corpus, queries_file)
        if not qrels:
            raise DataError(f"{path}: no judgments")
        return qrels
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
            add_judgment(qrels, parts[0], parts[1], parts[-1].strip(), f"{path} line {no}", queries, docs, corpus,
                         queries_file)
    if not qrels:
        raise DataError(f"{path}: no judgments")
    return qrels


def add_judgment(qrels: dict[str, dict[str, int]], qid: str, did: str, grade: str | int, at: str,
                 queries: set[str], docs: set[str], corpus: Path, queries_file: Path) -> None:
    """One judgment into ``qrels``, checked: an integer grade, a known query and document, judged once."""
    try:
        value = grade if isinstance(grade, int) else int(grade)
    except ValueError:
        raise DataError(f"{at}: field 'score' is {grade!r}, not an integer grade") from None
    if qid not in queries:
        raise DataError(f"{at}: field 'query-id' names query {qid!r}, which is not in {queries_file}")
    if did not in docs:
        raise DataError(f"{at}: field 'corpus-id' names document {did!r}, which is not in {corpus}")
    if did in qrels.get(qid, {}):
        raise DataError(f"{at}: ({qid!r}, {did!r}) is judged twice")
    qrels.setdefault(qid, {})[did] = value


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
    return retrieval_from_files(corpus, queries_file, qrels_file, str(root), candidates, depth)


def retrieval_from_files(corpus: Path, queries_file: Path, qrels_file: Path, where: str,
                         candidates: str | None = None, depth: int = 100) -> RetrievalData:
    """Retrieval data from a corpus, a queries and a qrels file (each JSON lines, Parquet, or TSV for qrels):
    the queries judged in the qrels, the corpus, the judgments, and optional TREC-run candidates."""
    doc_ids, docs = id_texts(corpus, with_title=True)
    if not doc_ids:
        raise DataError(f"{corpus}: the corpus is empty; retrieval needs documents")
    query_ids, queries = id_texts(queries_file, with_title=False)
    qrels = read_qrels(qrels_file, set(query_ids), set(doc_ids), corpus, queries_file)
    keep = [i for i, q in enumerate(query_ids) if q in qrels]
    cands = None
    if candidates is not None:
        cands = read_run(Path(candidates).expanduser(), depth, {query_ids[i] for i in keep}, set(doc_ids))
    sources = {"corpus": str(corpus), "queries": str(queries_file), "qrels": str(qrels_file),
               "candidates": str(candidates)}
    return RetrievalData([query_ids[i] for i in keep], [queries[i] for i in keep], doc_ids, docs, qrels, cands,
                         where=where, sources=sources)


def read_pairs(path: str | Path, gold: str, first: str = "sentence1", second: str = "sentence2"
               ) -> ScoredPairs | LabelledPairs:
    """A pair file (module doc); ``gold`` is ``score`` (-> ScoredPairs) or ``label`` (-> LabelledPairs)."""
    file = Path(path).expanduser()
    tsv = ".tsv" in file.suffixes
    if not (tsv or ".csv" in file.suffixes):
        raise DataError(f"{file}: a pair file must end in .tsv or .csv (optionally .gz)")
    with _open(file) as fh:
        reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else csv.DictReader(fh)
        missing = [c for c in (first, second, gold) if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{file}: no column {missing[0]!r} in the header {reader.fieldnames}; pair files need "
                            f"columns {first}, {second} and {gold}")
        return pairs_from_rows(((reader.line_num, row) for row in reader), gold, first, second, file)


def pairs_from_rows(rows: Iterable[tuple[int, Mapping[str, Any]]], gold: str, first: str, second: str,
                    file: Path, id_column: str = "id") -> ScoredPairs | LabelledPairs:
    """Pairs from (position, record) rows holding ``first``, ``second`` and ``gold`` (``score`` or ``label``;
    numbers or numeric strings) and an optional id (default ``line<N>``), each error naming ``file`` and the
    position."""
    ids, a, b, values = [], [], [], []
    for no, row in rows:
        raw = row.get(gold)
        try:
            if isinstance(raw, bool) or raw is None:
                raise ValueError
            value = float(raw if isinstance(raw, (int, float)) else str(raw).strip())
        except ValueError:
            shown = raw.strip() if isinstance(raw, str) else ("" if raw is None else raw)
            raise DataError(f"{file} {unit(file)} {no}: field {gold!r} is {shown!r}, not a number") from None
        if gold == "label" and value not in (0.0, 1.0):
            raise DataError(f"{file} {unit(file)} {no}: field 'label' is {raw!r}; labels must be 0 or 1")
        for column in (first, second):
            if not isinstance(row.get(column) or "", str):
                raise DataError(f"{file} {unit(file)} {no}: field {column!r} must be a string, got "
                                f"{type(row.get(column)).__name__}")
        ids.append(str(row.get(id_column) or f"line{no}"))
        a.append(row.get(first) or "")
        b.append(row.get(second) or "")
        values.append(value)
    if not ids:
        raise DataError(f"{file}: no pairs")
    if gold == "score":
        return ScoredPairs(ids, a, b, np.asarray(values), where=str(file))
    return LabelledPairs(ids, a, b, np.asarray(values, dtype=np.int64), where=str(file))
