"""labeleff protocol: the AUC by hand, seeded draws disjoint from test, a tiny case against a hand-written loop
with scikit-learn's LogisticRegression."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import benchmark.protocols.labeleff as labeleff
from benchmark.errors import DataError, OptionError
from benchmark.protocols.labeleff import (
    LABELEFF_DEFAULTS,
    curve_auc,
    evaluate_labeleff,
    label_efficiency,
    validate_labeleff,
)
from benchmark.storage.chunked import RowSet
from benchmark.testing import ArrayTask, blobs


def test_auc_by_hand():
    # x = log2(1, 2, 4) = 0, 1, 2; trapezoids (0.2 + 0.4) / 2 + (0.4 + 0.8) / 2 = 0.9, over the range 2
    assert curve_auc([1, 2, 4], [0.2, 0.4, 0.8]) == pytest.approx(0.45)
    # unsorted input, an uneven x step (log2 16 = 4): (0.5 + 0.5) / 2 * 1 + (0.5 + 1.0) / 2 * 3 = 2.75, / 4
    assert curve_auc([16, 1, 2], [1.0, 0.5, 0.5]) == pytest.approx(2.75 / 4)
    assert curve_auc([8], [0.3]) == 0.3  # one point: its accuracy
    assert curve_auc([1, 2, 4, 8], [0.7] * 4) == pytest.approx(0.7)  # flat curve: its level


def _hand_loop(train_x, train_y, test_x, test_y, shots, draws, seed, C):
    """Nested per-class draws written out, scikit-learn's LogisticRegression at a fixed C, no scaling."""
    out = {}
    for n in shots:
        accs = []
        for e in range(draws):
            rng = np.random.default_rng([seed, e])
            idx = []
            for c in sorted(set(train_y.tolist())):
                members = np.flatnonzero(train_y == c)
                idx.extend(rng.permutation(members)[:n].tolist())
            idx = sorted(idx)
            clf = LogisticRegression(C=C, max_iter=5000, tol=1e-8).fit(train_x[idx], train_y[idx])
            accs.append(float((clf.predict(test_x) == test_y).mean()))
        out[n] = accs
    return out


def test_tiny_case_matches_a_hand_loop_with_sklearn_logistic_regression():
    train, test = blobs(12, 3, 5, seed=0, spread=2.5), blobs(30, 3, 5, seed=0, spread=2.5)
    test = (test[0] + 0.3, test[1])  # not the train points
    task = ArrayTask({"train": train, "test": test}, seed=4)
    out = evaluate_labeleff(task, shots=[1, 2, 4, 8], draws=3, C=1.0, standardize=False, tol=1e-6,
                            include_all=False)
    ref = _hand_loop(*train, *test, [1, 2, 4, 8], 3, 4, 1.0)
    n_test = len(test[1])
    for point in out.metrics["curve"]:
        np.testing.assert_allclose(point["runs"], ref[point["shots"]], atol=1.01 / n_test)
        assert out.metrics[f"top1@shots={point['shots']}"] == pytest.approx(point["mean"])
    means = [np.mean(ref[n]) for n in (1, 2, 4, 8)]
    assert out.metrics["auc"] == pytest.approx(curve_auc([1, 2, 4, 8], means), abs=1.01 / n_test)
    assert np.mean(out.metrics["auc_runs"]) == pytest.approx(out.metrics["auc"])
    assert out.chosen["C"]["4"] == [1.0] * 3 and out.chosen["C_source"]["4"] == "fixed C"


def test_draws_are_deterministic_nested_and_never_touch_test(monkeypatch):
    """What the classifiers are fitted on: the rows of each draw, read by index from the train features themselves
    (no copy of the draw or of its train/val parts), nested across shots, the same for the same seed, never a
    test row."""
    train, test = blobs(20, 4, 6, seed=1), blobs(10, 4, 6, seed=2)
    train_rows = {tuple(r) for r in train[0]}
    test_rows = {tuple(r) for r in test[0]}
    assert not train_rows & test_rows
    seen: list[np.ndarray] = []
    real, real_sweep = labeleff.fit_logreg, labeleff.sweep_C

    def rows_of(*sets: RowSet) -> np.ndarray:
        assert all(part is train[0] for rows in sets for part, _ in rows.parts)  # indexed, never copied
        return RowSet(tuple(p for rows in sets for p in rows.parts)).materialize()

    def spy(x, y, C, **kw):
        seen.append(rows_of(x))
        return real(x, y, C, **kw)

    def spy_sweep(tx, ty, vx, vy, Cs, **kw):
        seen.append(rows_of(tx, vx))
        return real_sweep(tx, ty, vx, vy, Cs, **kw)

    monkeypatch.setattr(labeleff, "fit_logreg", spy)
    monkeypatch.setattr(labeleff, "sweep_C", spy_sweep)
    fixed = labeleff.CurveSettings(C=1.0)
    a, _ = label_efficiency(*train, *test, shots=[1, 2, 4], draws=2, seed=3, settings=fixed)
    assert [len(x) for x in seen] == [4, 4, 8, 8, 16, 16, 80]  # per point per draw, then all
    assert {tuple(r) for r in seen[0]} <= {tuple(r) for r in seen[2]}  # nested: draw 0 at 2 holds draw 0 at 1
    b, _ = label_efficiency(*train, *test, shots=[1, 2, 4], draws=2, seed=3, settings=fixed)
    assert [p.runs for p in a] == [p.runs for p in b]
    assert all(np.array_equal(x, y) for x, y in zip(seen[:7], seen[7:14], strict=True))
    label_efficiency(*train, *test, shots=[1, 2, 4], draws=2, seed=4, settings=fixed)
    assert not all(np.array_equal(x, y) for x, y in zip(seen[:6], seen[14:20], strict=True))
    label_efficiency(*train, *test, shots=[8, 16], draws=2, seed=3)  # C chosen on validation carved from draws
    fitted = [tuple(r) for x in seen for r in x]
    assert len(seen) == 26 and all(r in train_rows for r in fitted) and not any(r in test_rows for r in fitted)


def test_rows_read_by_index_give_the_metrics_of_copied_draws():
    """The curve from rows read by index equals the one from each draw copied out (the old way), every C choice
    included: the carved train/val parts, the fallback C and the fixed C."""
    x, y = blobs(40, 3, 5, seed=5, spread=1.5)
    test = blobs(20, 3, 5, seed=6, spread=1.5)
    for settings in (labeleff.CurveSettings(), labeleff.CurveSettings(C=0.5), labeleff.CurveSettings(standardize=True)):
        points, _ = label_efficiency(x, y, *test, shots=[2, 16], draws=2, seed=1, settings=settings)
        for p in points:
            for e, run in enumerate(p.runs):
                if p.shots == "all":
                    rows = np.arange(len(y))
                else:
                    rows = labeleff.draw_indices(labeleff.class_permutations(y, 1, e), int(p.shots))
                seed = 1 if p.shots == "all" else 1000 + e
                pred, C, how = labeleff.fit_predict(x[rows].copy(), y[rows], test[0], settings, seed, 3)
                assert run == float((pred == test[1]).mean())
                if C is not None:
                    assert p.Cs[e] == C and p.C_source == how


def test_points_above_the_smallest_class_are_skipped_and_the_all_point_is_one_draw():
    x, y = blobs(30, 3, 4, seed=0, spread=0.5)
    keep = np.concatenate([np.flatnonzero(y == 0)[:5], np.flatnonzero(y != 0)])  # class 0 has 5 samples
    task = ArrayTask({"train": (x[keep], y[keep]), "test": blobs(10, 3, 4, seed=0, spread=0.5)})
    out = evaluate_labeleff(task, draws=2, val_min_per_class=4)
    assert out.chosen["points"] == [1, 2, 4, "all"] and out.chosen["skipped"] == [8, 16, 64]
    assert "smallest train class (5)" in out.chosen["skipped_reason"]
    last = out.metrics["curve"][-1]
    assert last["shots"] == "all" and len(last["runs"]) == 1 and last["labels_per_class"] == pytest.approx(65 / 3)
    assert out.chosen["C_source"]["2"] == "fallback_C" and out.chosen["C_source"]["4"].startswith("validation")
    assert out.chosen["C_source"]["all"].startswith("validation") and len(out.chosen["C"]["4"]) == 2
    xs = [c["labels_per_class"] for c in out.metrics["curve"]]
    assert out.metrics["auc"] == pytest.approx(curve_auc(xs, [c["mean"] for c in out.metrics["curve"]]))
    assert 0 <= out.metrics["auc"] <= 1 and all(0 <= c["ci95"][0] <= c["ci95"][1] <= 1 for c in out.metrics["curve"])
    with pytest.raises(DataError, match="exceeds the smallest train class"):
        evaluate_labeleff(task, shots=[8], include_all=False)


def test_knn_classifier_runs_and_records_no_C():
    x, y = blobs(25, 3, 4, seed=0, spread=2.0)
    task = ArrayTask({"train": (x[:60], y[:60]), "test": (x[60:], y[60:])})
    out = evaluate_labeleff(task, shots=[1, 4], draws=2, classifier="knn", k=3)
    assert "C" not in out.chosen and out.chosen["C_source"]["1"] == "knn k=3"
    # the all point is plain kNN on the whole train split (k is clipped to the draw size, as in fewshot)
    from sklearn.neighbors import KNeighborsClassifier

    ref = KNeighborsClassifier(3, metric="cosine", algorithm="brute").fit(x[:60], y[:60]).predict(x[60:])
    assert out.metrics["top1@shots=all"] == pytest.approx(float((ref == y[60:]).mean()), abs=1.01 / 15)
    assert out.metrics["top1@shots=all"] > 0.5


@pytest.mark.parametrize(("options", "message"), [
    ({"shots": [1, 0]}, "protocol 'labeleff': option shots"),
    ({"draws": 0}, "option draws must be an integer >= 1"),
    ({"classifier": "svm"}, "option classifier must be one of logreg, knn"),
    ({"C": 0.0}, "option C must be > 0"),
    ({"val_fraction": 1.0}, "option val_fraction"),
    ({"shots": [], "include_all": False}, "option shots must be non-empty when include_all is false"),
])
def test_validator_rejects_bad_options(options, message):
    validate_labeleff(LABELEFF_DEFAULTS)
    with pytest.raises(OptionError, match=message):
        validate_labeleff(options)
