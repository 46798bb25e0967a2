"""Datasets that cannot be benchmarked as given (issue 19): fewer than 2 classes, labels that are not integers;
and a board that one such dataset cannot break."""

from __future__ import annotations

import numpy as np
import pytest
from test_board import rec

from benchmark.errors import ContractError
from benchmark.features.contracts import checked_split
from benchmark.leaderboards.board import build_board
from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.specs import Split
from benchmark.testing import catalog_with

import helpers


def test_a_single_class_dataset_is_a_contract_error_not_a_perfect_score(tmp_path):
    catalog = catalog_with(("harness", helpers.make_plugin()))
    plan = make_plan(catalog, ["pixels"], ["tiny[classes=1]"], ["centroid"])
    [record] = [r.to_json() for r in run_plan(catalog, plan, RunConfig(results_dir=tmp_path / "r",
                                                                        cache_dir=tmp_path / "c", quiet=True))]
    assert record["status"] == "error" and record["error"]["type"] == "ContractError"
    assert "dataset 'tiny[classes=1]' has 1 class(es)" in record["error"]["message"]
    assert "at least 2" in record["error"]["message"]


def test_a_dataset_that_cannot_be_normalised_is_left_out_of_the_normalised_score_saying_so():
    # d1 (10 classes) and d2 (2 classes) are normalised against chance; "one" has a single class, whose chance
    # level is 100%: it is left out of the normalised score, not a failure of the whole board
    records = [rec(e, d, v) for e, d, v in (("A", "d1", 0.9), ("A", "d2", 0.8), ("B", "d1", 0.5), ("B", "d2", 0.6))]
    records += [rec("A", "one", 1.0, classes=1), rec("B", "one", 1.0, classes=1)]
    (table,) = build_board(records).tables
    assert "one left out of the normalised score (fewer than 2 classes" in table.floor
    by_hand = {"A": ((0.9 - 0.1) / 0.9 + (0.8 - 0.5) / 0.5) / 2, "B": ((0.5 - 0.1) / 0.9 + (0.6 - 0.5) / 0.5) / 2}
    assert {r.key: r.normalized for r in table.rows} == pytest.approx({k: 100 * v for k, v in by_hand.items()})
    assert {r.key: r.mean for r in table.rows} == pytest.approx({"A": 90.0, "B": 70.0})  # the mean keeps it


def test_the_leaderboard_command_over_a_single_class_dataset_exits_0(tmp_path, capsys):
    import json

    from benchmark.cli import main

    for i, r in enumerate([rec("A", "d1", 0.9), rec("A", "one", 1.0, classes=1)]):
        (tmp_path / f"{i}.json").write_text(json.dumps(r.to_json()))
    assert main(["leaderboard", "--results", str(tmp_path)]) == 0
    assert "left out of the normalised score" in capsys.readouterr().out


@pytest.mark.parametrize(("labels", "message"), [
    ([0.0, 1.7, 2.9], r"split labels must be integer class indices, got non-integer values 1\.7, 2\.9 at rows \[1, 2\]"),
    ([0.0, float("nan"), 1.0], r"non-integer values nan at rows \[1\]"),
    (["cat", "dog", "cat"], r"got string values such as 'cat': map each class name to its index"),
    ([0, "1", 2], r"got string values such as '0'"),
])
def test_labels_that_are_not_integers_are_refused_before_any_cast(labels, message):
    with pytest.raises(ValueError, match=message):
        Split(["a", "b", "c"], labels)


def test_integral_float_labels_and_integers_are_accepted():
    assert Split(["a", "b"], np.array([0.0, 1.0])).labels.tolist() == [0, 1]
    assert Split(["a", "b"], np.array([1, 0], np.int32)).labels.dtype == np.int64


class FloatLabels:
    modality = "image"
    classes = ("a", "b", "c")
    splits = ("train", "test")

    def split(self, name):
        return Split(["x", "y", "z"], [0.0, 1.7, 2.9])


def test_a_dataset_with_float_labels_is_a_contract_error_naming_it_and_the_split():
    with pytest.raises(ContractError, match=r"dataset 'floaty' split 'train': split labels must be integer class "
                                            r"indices, got non-integer values 1\.7, 2\.9"):
        checked_split(FloatLabels(), "train", "floaty")


def test_fewshot_records_the_shots_really_drawn_when_classes_have_fewer():
    from benchmark.protocols.fewshot import fewshot_eval

    rng = np.random.default_rng(0)
    train_y = np.array([0, 1, 2] + [2] * 9)  # one sample of classes 0 and 1, ten of class 2
    train_x = rng.normal(size=(len(train_y), 4)).astype(np.float32) + train_y[:, None]
    test_y = np.array([0, 1, 2] * 4)
    test_x = rng.normal(size=(len(test_y), 4)).astype(np.float32) + test_y[:, None]
    res = fewshot_eval(train_x, train_y, test_x, test_y, shots=8, experiments=3)
    # by hand: each draw takes 1, 1 and 8 samples (8 of class 2's ten)
    assert res.train_sizes == [10, 10, 10]
    assert res.settings["shots"] == 8 and res.settings["shots_per_class"] == [1, 8]
    assert "as few as 1 drawn" in res.settings["note"]
    full = fewshot_eval(train_x, train_y[::-1].copy(), test_x, test_y, shots=1, experiments=2)
    assert full.settings["shots_per_class"] == [1, 1] and "note" not in full.settings
