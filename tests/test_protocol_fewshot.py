"""Few-shot protocol: seeded per-class draws, MTEB's exact recipe, summary statistics."""

from __future__ import annotations

import inspect
import warnings
from collections import defaultdict

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from benchmark.protocols.builtin import Fewshot
from benchmark.protocols.fewshot import (
    FEWSHOT_DEFAULTS,
    evaluate_fewshot,
    fewshot_eval,
    mteb_undersample,
    sample_shots,
)
from benchmark.testing import ArrayTask, blobs


def _task(seed=0):
    x, y = blobs(60, 5, 12, seed=4, spread=2.5)
    return ArrayTask({"train": (x[:200], y[:200]), "test": (x[200:], y[200:])}, seed=seed, num_classes=5)


def _mteb_literal(y, samples_per_label, n_experiments):
    """MTEB 1.x as it runs: AbsTask seeds numpy's global RNG with 42, each experiment shuffles the same idxs in
    place and keeps the first samples_per_label of each label, then builds an Evaluator that reseeds 42."""
    state = np.random.get_state()
    try:
        np.random.seed(42)  # AbsTask.__init__
        idxs, draws = None, []
        for _ in range(n_experiments):
            if idxs is None:
                idxs = np.arange(len(y))
            np.random.shuffle(idxs)
            counter, picked = defaultdict(int), []
            for i in idxs:
                if counter[y[i]] < samples_per_label:
                    picked.append(i)
                    counter[y[i]] += 1
            draws.append(picked)
            np.random.seed(42)  # Evaluator.__init__
        return draws
    finally:
        np.random.set_state(state)


def test_mteb_undersampling_is_exactly_mtebs():
    y = np.random.default_rng(0).integers(0, 7, 300)
    ours = mteb_undersample(y, 8, 10)
    ref = _mteb_literal(y, 8, 10)
    assert [d.tolist() for d in ours] == ref
    assert len({tuple(sorted(d)) for d in ours}) == 10  # the compounding shuffles give different draws


def test_mteb_style_scores_are_sklearn_logreg_on_mteb_draws():
    task = _task()
    (x, y), (xt, yt) = task.features("train"), task.features("test")
    out = evaluate_fewshot(task, **FEWSHOT_DEFAULTS | {"style": "mteb", "experiments": 3})
    expected = []
    for idx in _mteb_literal(y, 8, 3):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf = LogisticRegression(random_state=42, max_iter=100).fit(x[idx], y[idx])
        expected.append((clf.predict(xt) == yt).mean())
    assert out.metrics["top1_runs"] == pytest.approx(expected, abs=1e-12)
    assert out.metrics["top1"] == pytest.approx(np.mean(expected))
    assert out.chosen["settings"]["seed"] == 42


def test_sample_shots_draws_per_class_without_replacement():
    y = np.repeat(np.arange(4), [10, 10, 10, 3])
    idx = sample_shots(y, 5, seed=1, experiment=0)
    assert np.bincount(y[idx]).tolist() == [5, 5, 5, 3] and len(set(idx)) == len(idx)
    assert not np.array_equal(idx, sample_shots(y, 5, seed=1, experiment=1))
    np.testing.assert_array_equal(idx, sample_shots(y, 5, seed=1, experiment=0))


def test_metrics_summary_and_determinism():
    task = _task()
    out = evaluate_fewshot(task, **FEWSHOT_DEFAULTS | {"experiments": 4, "shots": 3})
    runs = out.metrics["top1_runs"]
    assert out.predictions is None and len(runs) == 4
    assert out.metrics["top1"] == out.metrics["top1_mean"] == pytest.approx(np.mean(runs))
    assert out.metrics["top1_std"] == pytest.approx(np.std(runs, ddof=1))
    low, high = out.metrics["top1_ci95"]
    assert low <= out.metrics["top1"] <= high
    assert out.metrics["train_size_mean"] == 15 and out.metrics["top1"] > 0.5
    assert evaluate_fewshot(task, **FEWSHOT_DEFAULTS | {"experiments": 4, "shots": 3}).metrics == out.metrics
    other = evaluate_fewshot(_task(seed=1), **FEWSHOT_DEFAULTS | {"experiments": 4, "shots": 3})
    assert other.metrics["top1_runs"] != runs


def test_knn_classifier_clips_k_to_the_shots_drawn():
    task = _task()
    out = evaluate_fewshot(task, **FEWSHOT_DEFAULTS | {"classifier": "knn", "shots": 2, "experiments": 2})
    assert out.chosen["settings"]["k_used"] == [10] and out.metrics["top1"] > 0.4


@pytest.mark.parametrize("bad, match", [({"style": "sota"}, "style"), ({"classifier": "svm"}, "classifier"),
                                         ({"shots": 0}, "shots"),
                                         ({"style": "mteb", "classifier": "knn"}, "classifier=logreg")])
def test_bad_options_raise(bad, match):
    x, y = blobs(10, 3, 4)
    with pytest.raises(ValueError, match=match):
        fewshot_eval(x, y, x, y, **bad)


def test_spec_declares_every_option():
    spec = {s.name: s for s in Fewshot.register_protocols()}["fewshot"]
    assert set(inspect.signature(spec.evaluate).parameters) - {"task"} == set(spec.defaults)
    assert spec.primary_metric == "top1"
