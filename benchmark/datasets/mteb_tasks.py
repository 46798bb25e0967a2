"""MTEB's English STS, retrieval, pair-classification and reranking tasks, read from their Hugging Face dataset
repositories at the revisions MTEB pins (``mteb/<Task>`` datasets; registered by
:mod:`benchmark.datasets.embedding_tasks`).

The pins are MTEB 1.x's (``mteb/tasks/<Type>/eng/<Task>.py`` from 1.12.75 to 1.39.7, the line most published
results were measured with), one version for all: MTEB 2 re-pinned SciFact (``d56462d0``) and moved
AskUbuntuDupQuestions to a retrieval-format repository (``mteb/AskUbuntuDupQuestions``, main score
``map_at_1000``), which the reranking reader here does not read.

Each :class:`MtebTask` names the hub repository, the pinned revision and the split from MTEB's task metadata
(``TaskMetadata(dataset={"path": ..., "revision": ...}, eval_splits=..., main_score=...)``), and the MTEB main
score that repbench's protocol reports as its primary metric (``cosine_spearman`` = ``sts``'s ``spearman``,
``ndcg_at_10`` = ``qrels-retrieval``'s ``ndcg@10``, ``max_ap`` / ``ap`` = ``pairclass``'s best AP over
similarities, ``map`` = ``rerank``'s ``map``).

Files are found as ``datasets`` finds them: the ``configs:`` block of the repository's README (config ->
split -> file patterns), else the usual names (``<split>.jsonl.gz``, ``data/<split>-*.parquet``,
``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``). They are read by suffix (JSON lines, optionally
gzipped, or Parquet; qrels also TSV) through :mod:`benchmark.datasets.taskfiles`, with its checks:

* STS: one record per pair with ``sentence1``, ``sentence2``, ``score`` (other columns ignored);
* pair classification: records whose ``sentence1`` / ``sentence2`` / ``labels`` (``sent1`` / ``sent2`` in
  early MTEB files) are *lists* (MTEB stores a split as one such row), or plain one-pair records;
* retrieval: a BEIR-style corpus (``_id``, ``title``, ``text``), queries (``_id``, ``text``) and qrels
  (``query-id``, ``corpus-id``, ``score``); a document is ``title + " " + text``. For ArguAna and Quora MTEB
  sets ``ignore_identical_ids``: a retrieved document whose id is the query's id (the query itself, which the
  corpus holds) is dropped from the ranking; so is it here (``RetrievalData.ignore_identical_ids``);
* reranking: records with ``query``, ``positive`` (list) and ``negative`` (list); each record is a query whose
  candidates are its positives (grade 1) and negatives (grade 0). As MTEB's reranking evaluator does, records
  without a positive or without a negative are skipped. A text listed twice for one query is one candidate
  (positive if listed as both); identical texts across queries are one corpus document.

Download: ``huggingface_hub.snapshot_download`` of the data files at the pinned revision into the Hugging Face
cache (``HF_HOME``); a cached copy is used without a network call. Offline without a cached copy the loader
fails at once in one line (no retries) saying how to fetch the files, or to name a local copy with
``path=<folder>`` (a folder holding the repository's files, e.g. from
``huggingface-cli download <repo> --repo-type dataset --revision <rev> --local-dir <folder>``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark import checks
from benchmark.datasets.pairs import FieldTaskDataset, LabelledPairs, RetrievalData, ScoredPairs
from benchmark.datasets.tables import DatasetUnavailable
from benchmark.datasets.taskfiles import pairs_from_rows, records, retrieval_from_files
from benchmark.errors import DataError, MissingData
from benchmark.specs import DatasetSpec

#: The data files a snapshot downloads (never a loading script or unrelated artefacts).
DATA_PATTERNS = ("README.md", "*.jsonl", "*.jsonl.gz", "*.json", "*.json.gz", "*.parquet", "*.tsv", "*.tsv.gz")
DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".tsv")


@dataclass(frozen=True)
class MtebTask:
    """One MTEB task: its name, hub repository, pinned revision, evaluated split, repbench kind and MTEB's main
    score (the repbench metric equal to it: :data:`benchmark.leaderboards.published_join.MTEB_METRICS`)."""

    name: str
    repo: str
    revision: str
    split: str
    kind: str  # sts | pairclass | retrieval | rerank
    main_score: str
    description: str
    ignore_identical_ids: bool = False

    @property
    def dataset_kind(self) -> str:
        return {"sts": "scored-pairs", "pairclass": "labelled-pairs"}.get(self.kind, "retrieval")


TASKS: tuple[MtebTask, ...] = (
    MtebTask("STSBenchmark", "mteb/stsbenchmark-sts", "b0fddb56ed78048fa8b90373c8a3cfc37b684831", "test", "sts",
             "cosine_spearman", "STS Benchmark sentence pairs, gold 0-5"),
    MtebTask("SICK-R", "mteb/sickr-sts", "20a6d6f312dd54037fe07a32d58e5e168867909d", "test", "sts",
             "cosine_spearman", "SICK relatedness sentence pairs, gold 1-5"),
    MtebTask("SciFact", "mteb/scifact", "0228b52cf27578f30900b9e5271d331663a030d7", "test", "retrieval",
             "ndcg_at_10", "scientific claims retrieve the abstracts that support or refute them"),
    MtebTask("NFCorpus", "mteb/nfcorpus", "ec0fa4fe99da2ff19ca1214b7966684033a58814", "test", "retrieval",
             "ndcg_at_10", "nutrition questions retrieve medical articles (graded)"),
    MtebTask("ArguAna", "mteb/arguana", "c22ab2a51041ffd869aaddef7af8d8215647e41a", "test", "retrieval",
             "ndcg_at_10", "an argument retrieves its best counter-argument", ignore_identical_ids=True),
    MtebTask("QuoraRetrieval", "mteb/quora", "e4e08e0b7dbe3c8700f0daef558ff32256715259", "test", "retrieval",
             "ndcg_at_10", "a Quora question retrieves its duplicates among ~523k questions",
             ignore_identical_ids=True),
    MtebTask("SprintDuplicateQuestions", "mteb/sprintduplicatequestions-pairclassification",
             "d66bd1f72af766a5cc4b0ca5e00c162f89e8cc46", "test", "pairclass", "max_ap",
             "are two Sprint forum questions duplicates?"),
    MtebTask("AskUbuntuDupQuestions", "mteb/askubuntudupquestions-reranking",
             "2000358ca161889fa9c082cb41daa8dcfb161a54", "test", "rerank", "map",
             "rerank AskUbuntu questions: duplicates (positive) among similar ones"),
)
BY_NAME: dict[str, MtebTask] = {t.name: t for t in TASKS}
PREFIX = "mteb/"


# --- where the files are -------------------------------------------------------------------------------------
def snapshot(task: MtebTask, revision: str) -> Path:
    """The folder of ``task``'s repository at ``revision`` in the Hugging Face cache, downloaded if needed.
    Offline (``HF_HUB_OFFLINE`` or the hub unreachable within a short probe) and not cached: one line, no
    retries."""
    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError:
        raise DatasetUnavailable(f"dataset {PREFIX}{task.name!s}: downloading MTEB datasets needs huggingface_hub: "
                                 "pip install 'repbench[hf-datasets]'") from None
    from benchmark.encoders.base import PROBE_TIMEOUT_S, host_reachable, hub_offline

    def fetch(cached_only: bool) -> Path:
        return Path(snapshot_download(task.repo, repo_type="dataset", revision=revision,
                                      allow_patterns=list(DATA_PATTERNS), local_files_only=cached_only))

    try:
        return fetch(cached_only=True)
    except Exception:  # not cached (LocalEntryNotFoundError and friends): download, if the hub can be reached
        pass
    if hub_offline():
        cause = "HF_HUB_OFFLINE is set and it is not in the local Hugging Face cache"
    elif not host_reachable(constants.ENDPOINT):
        cause = f"{constants.ENDPOINT} cannot be reached: no connection within {PROBE_TIMEOUT_S:g} s"
    else:
        try:
            return fetch(cached_only=False)
        except Exception as exc:
            cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    raise DatasetUnavailable(
        f"dataset '{PREFIX}{task.name}' needs the Hugging Face dataset {task.repo} at revision {revision[:12]} "
        f"({cause}). Connect to the internet once (it is cached under HF_HOME), or download it elsewhere with "
        f"`huggingface-cli download {task.repo} --repo-type dataset --revision {revision} --local-dir DIR` and "
        f"name the copy: -d '{PREFIX}{task.name}[path=DIR]'.")


def readme_configs(folder: Path) -> dict[str, dict[str, list[str]]]:
    """``configs:`` of the README's YAML header: config name -> split -> file patterns (``{}`` when none)."""
    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    import yaml

    try:
        header = yaml.safe_load(text[3:end] if end > 0 else "")
    except yaml.YAMLError:
        raise DataError(f"{readme}: the YAML header cannot be parsed; remove the README to use the usual file "
                        "names") from None
    out: dict[str, dict[str, list[str]]] = {}
    for config in (header or {}).get("configs") or [] if isinstance(header, dict) else []:
        if not isinstance(config, dict):
            continue
        files = config.get("data_files")
        splits: dict[str, list[str]] = {}
        for entry in files if isinstance(files, list) else [files]:
            if isinstance(entry, str):
                splits.setdefault("train", []).append(entry)  # datasets' default split for bare patterns
            elif isinstance(entry, dict) and "split" in entry:
                path = entry.get("path")
                splits.setdefault(str(entry["split"]), []).extend([path] if isinstance(path, str) else path or [])
        out[str(config.get("config_name", "default"))] = splits
    return out


def _matching(folder: Path, patterns: list[str]) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
    rel = [(p, p.relative_to(folder).as_posix()) for p in files]
    return [p for p, r in rel if any(fnmatch.fnmatchcase(r, pat) for pat in patterns)]


def data_files(folder: Path, config: str, split: str | None, usual: list[str], what: str) -> list[Path]:
    """The files of ``config`` / ``split`` (``None``: the config's only split) by the README's ``configs:``,
    else the ``usual`` patterns; MissingData naming the folder and what was looked for when none exist."""
    configs = readme_configs(folder)
    found: list[Path] = []
    if config in configs:
        splits = configs[config]
        # a split asked for by name must be named (a bare pattern could hold every split); a config of one part
        # (corpus, queries) is taken whole
        patterns = splits.get(split) if split is not None else next(iter(splits.values()), None)
        found = _matching(folder, list(patterns or []))
    if not found:
        found = _matching(folder, usual)
        if len({p.parent for p in found}) > 1 or len({p.name.split(".")[0] for p in found}) > 1:
            found = [p for p in found if p.parent == found[0].parent and p.name.split(".")[0] ==
                     found[0].name.split(".")[0]]  # the first usual name found wins
    found = [p for p in found if any(s in p.suffixes for s in DATA_SUFFIXES)]
    if not found:
        raise MissingData(f"{folder}: no {what} file (looked for config {config!r}"
                          f"{'' if split is None else f' split {split!r}'} in README.md configs, then "
                          f"{', '.join(usual)})")
    return found


def _usual(split: str) -> list[str]:
    return [f"{split}.jsonl.gz", f"{split}.jsonl", f"{split}.json.gz", f"{split}.parquet",
            f"data/{split}-*.parquet", f"default/{split}-*.parquet", f"default/{split}/*.parquet"]


def _rows(files: list[Path]) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    for f in files:
        for no, obj in records(f):
            yield f, no, obj


# --- the kinds ----------------------------------------------------------------------------------------------
def read_sts(folder: Path, split: str) -> ScoredPairs | LabelledPairs:
    files = data_files(folder, "default", split, _usual(split), f"{split} pairs")
    if len(files) == 1:
        return pairs_from_rows(records(files[0]), "score", "sentence1", "sentence2", files[0])
    rows = ((no, obj) for no, (_, _, obj) in enumerate(_rows(files), 1))
    return pairs_from_rows(rows, "score", "sentence1", "sentence2", files[0].parent)


def read_pairclass(folder: Path, split: str) -> LabelledPairs:
    """Rows whose sentence columns are lists (MTEB's one-row layout) are flattened, pair ids ``<row>:<i>``."""
    files = data_files(folder, "default", split, _usual(split), f"{split} pairs")

    def flat() -> Iterator[tuple[int, dict[str, Any]]]:
        n = 0
        for f, no, obj in _rows(files):
            a, b = (obj.get("sentence1", obj.get("sent1")), obj.get("sentence2", obj.get("sent2")))
            labels = obj.get("labels", obj.get("label"))
            if not isinstance(a, list):
                n += 1
                yield n, {"sentence1": a, "sentence2": b, "label": labels, "id": f"{no}"}
                continue
            if not (isinstance(b, list) and isinstance(labels, list) and len(a) == len(b) == len(labels)):
                raise DataError(f"{f} {'row' if f.suffix == '.parquet' else 'line'} {no}: fields 'sentence1', "
                                "'sentence2' and 'labels' must be lists of one length")
            for i, (x, y, lab) in enumerate(zip(a, b, labels, strict=True)):
                n += 1
                yield n, {"sentence1": x, "sentence2": y, "label": lab, "id": f"{no}:{i}"}

    pairs = pairs_from_rows(flat(), "label", "sentence1", "sentence2", files[0])
    assert isinstance(pairs, LabelledPairs)
    return pairs


def read_rerank(folder: Path, split: str) -> RetrievalData:
    files = data_files(folder, "default", split, _usual(split), f"{split} reranking")
    qids: list[str] = []
    queries: list[str] = []
    docs: dict[str, str] = {}  # text -> id
    qrels: dict[str, dict[str, int]] = {}
    cands: dict[str, list[str]] = {}
    for f, no, obj in _rows(files):
        at = f"{f} {'row' if f.suffix == '.parquet' else 'line'} {no}"
        query, pos, neg = obj.get("query"), obj.get("positive"), obj.get("negative")
        if not isinstance(query, str):
            raise DataError(f"{at}: field 'query' must be a string, got {type(query).__name__}")
        for name, value in (("positive", pos), ("negative", neg)):
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise DataError(f"{at}: field {name!r} must be a list of strings")
        if not pos or not neg:
            continue  # as MTEB's RerankingEvaluator: a sample needs both
        qid = f"q{len(qids)}"
        judged: dict[str, int] = {}
        for text in [*pos, *neg]:
            did = docs.setdefault(text, f"d{len(docs)}")
            judged[did] = max(judged.get(did, 0), int(text in pos))
        qids.append(qid)
        queries.append(query)
        qrels[qid], cands[qid] = judged, list(judged)
    if not qids:
        raise DataError(f"{files[0]}: no record with both a positive and a negative; nothing to rerank")
    return RetrievalData(qids, queries, list(docs.values()), list(docs), qrels, cands, where=str(folder))


def read_retrieval(folder: Path, split: str) -> RetrievalData:
    corpus = data_files(folder, "corpus", None, ["corpus.jsonl", "corpus.jsonl.gz", "corpus/*.parquet",
                                                 "corpus-*.parquet", "corpus/corpus-*.parquet"], "corpus")
    queries = data_files(folder, "queries", None, ["queries.jsonl", "queries.jsonl.gz", "queries/*.parquet",
                                                   "queries-*.parquet", "queries/queries-*.parquet"], "queries")
    qrels = data_files(folder, "default", split, [f"qrels/{split}.tsv", f"qrels/{split}.jsonl",
                                                  f"qrels/{split}.parquet", f"default/{split}-*.parquet",
                                                  f"data/{split}-*.parquet"], f"{split} qrels")
    for what, files in (("corpus", corpus), ("queries", queries), ("qrels", qrels)):
        if len(files) > 1:
            raise DataError(f"{folder}: the {what} is split over {len(files)} files, which this reader does not "
                            "join; name a folder with one file each")
    return retrieval_from_files(corpus[0], queries[0], qrels[0], str(folder))


READERS: dict[str, Callable[[Path, str], ScoredPairs | LabelledPairs | RetrievalData]] = {
    "sts": read_sts, "pairclass": read_pairclass, "retrieval": read_retrieval, "rerank": read_rerank}


def load_task(task: MtebTask, revision: str | None = None, split: str | None = None, path: str | None = None
              ) -> FieldTaskDataset:
    """The dataset of ``task``: from ``path`` (a local copy of the repository's files) or the hub snapshot at
    ``revision`` (default: the revision MTEB pins), ``split`` (default: the split MTEB evaluates)."""
    revision, split = revision or task.revision, split or task.split
    name = f"{PREFIX}{task.name}"
    local = Path(path).expanduser() if path else None
    if local is not None and not local.is_dir():
        raise MissingData(f"dataset {name!r}: path={path!r} is not a folder; give a folder holding the files of "
                          f"{task.repo}")

    def build() -> ScoredPairs | LabelledPairs | RetrievalData:
        folder = local if local is not None else snapshot(task, revision)
        data = READERS[task.kind](folder, split)
        if isinstance(data, RetrievalData) and task.ignore_identical_ids:
            data.ignore_identical_ids = True
        return data

    info: dict[str, Any] = {"source": f"huggingface:{task.repo}" if local is None else f"local copy of {task.repo}",
                            "revision": revision if local is None else None, "split": split,
                            "mteb_task": task.name, "mteb_main_score": task.main_score}
    if task.ignore_identical_ids:
        info["ignore_identical_ids"] = True
    return FieldTaskDataset(name, build, info)


def _loader(task: MtebTask) -> Callable[..., FieldTaskDataset]:
    def load(revision: str | None = None, split: str | None = None, path: str | None = None) -> FieldTaskDataset:
        return load_task(task, revision, split, path)

    load.__doc__ = f"MTEB {task.name} ({task.repo}); revision/split default to MTEB's, path= a local copy."
    return load


def _validate(name: str) -> Callable[[Mapping[str, Any]], None]:
    def validate(options: Mapping[str, Any]) -> None:
        for key in ("revision", "split", "path"):
            checks.need_str(f"dataset {name!r}", key, options.get(key), optional=True, empty=False)

    return validate


def mteb_specs() -> list[DatasetSpec]:
    """One dataset spec per :data:`TASKS` entry, named ``mteb/<Task>``."""
    return [DatasetSpec(f"{PREFIX}{t.name}", "text", load=_loader(t), kind=t.dataset_kind,
                        description=f"MTEB {t.name}: {t.description} ({t.split} split; internet once, or path=)",
                        validate=_validate(f"{PREFIX}{t.name}"), requires=("huggingface_hub",))
            for t in TASKS]


__all__ = ["BY_NAME", "TASKS", "MtebTask", "load_task", "mteb_specs"]
