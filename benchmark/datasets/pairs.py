"""Datasets of the task kinds beyond classification (:data:`benchmark.specs.KINDS`): their containers and the
:class:`FieldTaskDataset` that serves them to the harness.

* ``scored-pairs`` -> :class:`ScoredPairs`: pair ids, two texts per pair and a graded gold score (STS).
* ``labelled-pairs`` -> :class:`LabelledPairs`: pair ids, two texts and a 0/1 label (duplicates, paraphrases).
* ``retrieval`` -> :class:`RetrievalData`: queries and a corpus (ids and texts), graded relevance judgments
  (qrels: query id -> document id -> integer grade, 0 meaning judged not relevant) and, for reranking, a
  candidate list of document ids per query.

A kind's dataset has no class labels: ``classes`` is empty and its only split is ``test``. What the harness
encodes are its *fields* (:meth:`FieldTaskDataset.fields`): ``sentence1`` / ``sentence2`` for pairs (no role),
``queries`` (role ``query``) and ``corpus`` (role ``document``) for retrieval; each is encoded once and cached
under its texts, the encoder and the role (:mod:`benchmark.features.fields`).

How a plugin adds a kind's dataset: register a :class:`~benchmark.specs.DatasetSpec` with ``kind=`` set whose
``load`` returns a :class:`FieldTaskDataset` built from one of these containers (see
:mod:`benchmark.datasets.embedding_tasks`). Every container checks itself when built and raises
:class:`~benchmark.errors.DataError` naming the dataset (``where``) and the field at fault.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.errors import ContractError, DataError
from benchmark.specs import Field, Split


def _duplicate(ids: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None


def _check_ids(ids: Sequence[str], what: str, where: str) -> None:
    if not all(isinstance(i, str) and i for i in ids):
        raise DataError(f"{where}: every {what} id must be a non-empty string")
    dup = _duplicate(ids)
    if dup is not None:
        raise DataError(f"{where}: {what} id {dup!r} appears twice; ids must be unique")


def _check_texts(texts: Sequence[Any], n: int, what: str, where: str) -> None:
    if len(texts) != n:
        raise DataError(f"{where}: {len(texts)} {what} texts for {n} ids")
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"{where}: {what} text at position {bad} is {type(texts[bad]).__name__}, not a string")


@dataclass
class ScoredPairs:
    """Pairs of texts with a graded gold similarity (STS): ``scores`` float64, any finite scale."""

    ids: list[str]
    first: list[str]
    second: list[str]
    scores: np.ndarray
    where: str = "scored pairs"

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=np.float64)
        _check_pairs(self.ids, self.first, self.second, self.scores, self.where)
        if not np.isfinite(self.scores).all():
            raise DataError(f"{self.where}: field 'score' has non-finite values; every pair needs a finite score")

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class LabelledPairs:
    """Pairs of texts with a binary gold label (1: duplicate / paraphrase, 0: not)."""

    ids: list[str]
    first: list[str]
    second: list[str]
    labels: np.ndarray
    where: str = "labelled pairs"

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels)
        _check_pairs(self.ids, self.first, self.second, self.labels, self.where)
        if not np.isin(self.labels, (0, 1)).all():
            raise DataError(f"{self.where}: field 'label' must be 0 or 1, got "
                            f"{sorted(set(np.unique(self.labels).tolist()) - {0, 1})[:5]}")
        self.labels = self.labels.astype(np.int64)
        if len(np.unique(self.labels)) < 2:
            raise DataError(f"{self.where}: field 'label' needs both classes (0 and 1) to score pair "
                            "classification")

    def __len__(self) -> int:
        return len(self.ids)


def _check_pairs(ids: list[str], first: list[str], second: list[str], gold: np.ndarray, where: str) -> None:
    if not ids:
        raise DataError(f"{where}: no pairs")
    _check_ids(ids, "pair", where)
    _check_texts(first, len(ids), "first-sentence", where)
    _check_texts(second, len(ids), "second-sentence", where)
    if gold.shape != (len(ids),):
        raise DataError(f"{where}: {gold.shape} gold values for {len(ids)} pairs")


@dataclass
class RetrievalData:
    """Queries, a corpus and graded judgments; ``candidates`` (query id -> document ids) makes it reranking.

    Only queries with at least one judgment are scored (as BEIR and MTEB do); grades are integers, > 0 relevant.
    """

    query_ids: list[str]
    queries: list[str]
    doc_ids: list[str]
    docs: list[str]
    qrels: dict[str, dict[str, int]]
    candidates: dict[str, list[str]] | None = None
    where: str = "retrieval data"
    sources: dict[str, str] = field(default_factory=dict)
    #: MTEB's ``ignore_identical_ids`` (ArguAna, Quora): a document whose id is the query's id is never ranked.
    ignore_identical_ids: bool = False

    def _at(self, part: str) -> str:
        return self.sources.get(part, f"{self.where} ({part})")

    def __post_init__(self) -> None:
        if not self.doc_ids:
            raise DataError(f"{self._at('corpus')}: the corpus is empty; retrieval needs documents")
        if not self.query_ids:
            raise DataError(f"{self._at('queries')}: no queries")
        _check_ids(self.doc_ids, "document", self._at("corpus"))
        _check_ids(self.query_ids, "query", self._at("queries"))
        _check_texts(self.docs, len(self.doc_ids), "document", self._at("corpus"))
        _check_texts(self.queries, len(self.query_ids), "query", self._at("queries"))
        docs, queries = set(self.doc_ids), set(self.query_ids)
        for qid, judged in self.qrels.items():
            if qid not in queries:
                raise DataError(f"{self._at('qrels')}: qrels name query {qid!r}, which is not among the queries; "
                                "remove its lines or add the query")
            for did, grade in judged.items():
                if did not in docs:
                    raise DataError(f"{self._at('qrels')}: qrels of query {qid!r} name document {did!r}, which is "
                                    "not in the corpus; remove the line or add the document")
                if not isinstance(grade, (int, np.integer)) or isinstance(grade, bool):
                    raise DataError(f"{self._at('qrels')}: field 'score' of ({qid!r}, {did!r}) must be an integer "
                                    f"grade, got {grade!r}")
        if not any(g > 0 for judged in self.qrels.values() for g in judged.values()):
            raise DataError(f"{self._at('qrels')}: no relevant (grade > 0) judgment; nothing to score")
        for qid, cands in (self.candidates or {}).items():
            if qid not in queries:
                raise DataError(f"{self._at('candidates')}: candidates of unknown query {qid!r}")
            missing = next((d for d in cands if d not in docs), None)
            if missing is not None:
                raise DataError(f"{self._at('candidates')}: candidates of query {qid!r} name document {missing!r}, "
                                "which is not in the corpus")
            if _duplicate(cands) is not None:
                raise DataError(f"{self._at('candidates')}: query {qid!r} lists document {_duplicate(cands)!r} "
                                "twice among its candidates")

    def scored_queries(self) -> list[int]:
        """Positions of the queries with at least one relevant judgment (and candidates, when reranking)."""
        keep = []
        for i, qid in enumerate(self.query_ids):
            judged = self.qrels.get(qid, {})
            if any(g > 0 for g in judged.values()) and (self.candidates is None or self.candidates.get(qid)):
                keep.append(i)
        return keep


def task_data(task: Any, expected: type, owner: str) -> Any:
    """The container of ``task``'s dataset, checked to be an ``expected`` (ContractError otherwise)."""
    data = getattr(task.dataset, "data", None)
    if not isinstance(data, expected):
        raise ContractError(f"{owner}: dataset {getattr(task, 'dataset_name', '?')!r} holds "
                            f"{type(data).__name__}, not {expected.__name__}")
    return data


KIND_OF: dict[type, str] = {ScoredPairs: "scored-pairs", LabelledPairs: "labelled-pairs", RetrievalData: "retrieval"}


class FieldTaskDataset:
    """A :class:`~benchmark.specs.Dataset` and :class:`~benchmark.specs.FieldDataset` over one container.

    ``data`` is the container (built lazily by ``build()`` on first use); ``info`` goes into records (plus the
    sizes); ``fingerprint`` hashes every text, id, gold value and judgment, so any change re-keys records.
    """

    modality = "text"
    classes: list[str] = []
    splits: tuple[str, ...] = ("test",)

    def __init__(self, name: str, build: Any, info: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self._build = build
        self._data: ScoredPairs | LabelledPairs | RetrievalData | None = None
        self._info = dict(info or {})

    @property
    def data(self) -> ScoredPairs | LabelledPairs | RetrievalData:
        if self._data is None:
            data = self._build() if callable(self._build) else self._build
            if type(data) not in KIND_OF:
                raise ContractError(f"dataset {self.name!r}: build() returned {type(data).__name__}, not one of "
                                    "ScoredPairs, LabelledPairs, RetrievalData")
            self._data = data
        return self._data

    @property
    def kind(self) -> str:
        return KIND_OF[type(self.data)]

    def fields(self) -> dict[str, Field]:
        d = self.data
        if isinstance(d, RetrievalData):
            return {"queries": Field(d.queries, "query"), "corpus": Field(d.docs, "document")}
        return {"sentence1": Field(d.first), "sentence2": Field(d.second)}

    def fit_samples(self) -> list[str]:
        """What a fitted encoder (TF-IDF) learns its vocabulary from: the corpus for retrieval, both sides of
        every pair for pair kinds. Never gold scores, labels or judgments."""
        d = self.data
        return list(d.docs) if isinstance(d, RetrievalData) else list(d.first) + list(d.second)

    def split(self, name: str) -> Split:
        raise ContractError(f"dataset {self.name!r} is a {self.kind} dataset: it has fields "
                            f"({', '.join(self.fields())}), not class-labelled splits; use a protocol that accepts "
                            f"{self.kind} datasets")

    @property
    def info(self) -> dict[str, Any]:
        d = self.data
        sizes: dict[str, int]
        if isinstance(d, RetrievalData):
            sizes = {"queries": len(d.query_ids), "corpus": len(d.doc_ids), "scored_queries": len(d.scored_queries()),
                     "judgments": sum(len(j) for j in d.qrels.values())}
            if d.candidates is not None:
                sizes["candidates"] = sum(len(c) for c in d.candidates.values())
        else:
            sizes = {"pairs": len(d)}
        return {**self._info, "kind": self.kind, "sizes": sizes}

    @property
    def fingerprint(self) -> str:
        d = self.data
        h = hashlib.sha256(f"{self.name}\0{self.kind}\0{sorted(self._info.items())!r}".encode())
        if isinstance(d, RetrievalData):
            parts: list[Any] = [d.query_ids, d.queries, d.doc_ids, d.docs, sorted((q, sorted(j.items()))
                                                                                   for q, j in d.qrels.items()),
                                sorted((d.candidates or {}).items())]
            if d.ignore_identical_ids:
                parts.append("ignore_identical_ids")
        else:
            gold = d.scores if isinstance(d, ScoredPairs) else d.labels
            parts = [d.ids, d.first, d.second, gold.tolist()]
        for part in parts:
            h.update(repr(part).encode())
            h.update(b"\0")
        return h.hexdigest()[:16]
