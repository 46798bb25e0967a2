"""Linear probe: the objective and solution of scikit-learn's LogisticRegression, C chosen without test data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from benchmark.protocols.builtin import Linear
from benchmark.protocols.linear import LINEAR_DEFAULTS, evaluate_linear
from benchmark.protocols.logreg import carve_val, fit_logreg, objective, standardizer, sweep_C
from benchmark.testing import ArrayTask, blobs


def _data(seed=0, n_per_class=60, n_classes=6, dim=20, spread=3.0):
    x, y = blobs(n_per_class, n_classes, dim, seed=seed, spread=spread)
    x = x * np.linspace(0.1, 3, dim, dtype=np.float32)  # uneven feature scales, as real encoders give
    return x, y


@pytest.mark.parametrize("C", [0.01, 0.3, 5.0])
@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("n_classes", [2, 4])
def test_matches_sklearn_lbfgs_at_fixed_C(C, standardize, n_classes):
    x, y = _data(n_classes=n_classes)
    cut = len(y) * 7 // 10
    xt, yt = x[:cut], y[:cut]
    ours = fit_logreg(xt, yt, C, standardize=standardize, tol=1e-7, max_iter=3000)
    mean, scale = standardizer(xt)
    xs = (xt - mean) / scale if standardize else xt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = LogisticRegression(C=C, max_iter=5000, tol=1e-8).fit(xs.astype(np.float64), yt)
    yi = np.searchsorted(ours.classes, yt)
    f_ours = objective(ours.weight, ours.bias, ours.transform(xt), yi, C)
    f_sk = objective(sk.coef_, sk.intercept_, xs, yi, C)
    assert f_ours == pytest.approx(f_sk, rel=1e-3, abs=1e-2)
    assert f_ours >= f_sk - 1e-2 * max(1.0, abs(f_sk))  # sklearn's float64 optimum is (about) the minimum
    xe = x[cut:]
    acc_ours = (ours.predict(xe) == y[cut:]).mean()
    acc_sk = (sk.predict((xe - mean) / scale if standardize else xe) == y[cut:]).mean()
    assert abs(acc_ours - acc_sk) <= 0.005 + 1e-9
    assert (ours.predict(xe) == sk.predict((xe - mean) / scale if standardize else xe)).mean() > 0.97


def test_bias_is_unpenalised_and_absent_classes_get_no_row():
    x, y = _data(n_classes=3)
    y = np.where(y == 1, 7, y)  # labels {0, 2, 7}
    model = fit_logreg(x + 50.0, y, 0.01, standardize=False)
    assert model.classes.tolist() == [0, 2, 7] and model.weight.shape[0] == 3
    assert set(np.unique(model.predict(x + 50.0))) <= {0, 2, 7}


def test_warm_started_sweep_equals_cold_fits_and_refits_on_train_and_val():
    x, y = _data(seed=3, spread=6.0)
    tr, va, how = carve_val(y, 0.25, seed=0)
    assert how == "stratified"
    Cs = [0.001, 0.1, 10.0]
    sweep = sweep_C(x[tr], y[tr], x[va], y[va], Cs, tol=1e-6)
    stats = standardizer(np.concatenate([x[tr], x[va]]))
    for C in Cs:
        cold = fit_logreg(x[tr], y[tr], C, stats=stats, tol=1e-6)
        assert abs((cold.predict(x[va]) == y[va]).mean() - sweep.val_top1[C]) <= 0.02
    assert max(Cs, key=lambda c: (sweep.val_top1[c], -c)) == sweep.C
    full = fit_logreg(np.concatenate([x[tr], x[va]]), np.concatenate([y[tr], y[va]]), sweep.C, tol=1e-6)
    assert (full.predict(x) == sweep.model.predict(x)).mean() > 0.98


def _noisy(seed, noise, n=120, dim=100, n_classes=4):
    """Few samples, many noisy dimensions: validation accuracy tends to fall as regularisation weakens."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)).astype(np.float32)
    y = np.arange(n) % n_classes
    x = centres[y] + noise * rng.normal(size=(n, dim)).astype(np.float32)
    tr, va, _ = carve_val(y, 0.5, seed=1)
    return x[tr], y[tr], x[va], y[va]


SWEEP_CS = [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]


@pytest.mark.parametrize("patience", [1, 2])
def test_early_stopped_sweep_evaluates_a_prefix_and_chooses_as_the_full_sweep(patience):
    data = _noisy(seed=2, noise=5.0)
    full = sweep_C(*data, SWEEP_CS, patience=0)
    assert full.evaluated == SWEEP_CS
    assert full.C == 1e-3
    curve = [full.val_top1[c] for c in SWEEP_CS]
    assert all(a > b for a, b in zip(curve, curve[1:3], strict=False)), curve  # falls at once: must stop early
    early = sweep_C(*data, SWEEP_CS, patience=patience)
    assert early.evaluated == SWEEP_CS[: patience + 1]
    assert early.C == full.C
    assert all(early.val_top1[c] == full.val_top1[c] for c in early.evaluated)  # the same warm-start path
    np.testing.assert_array_equal(early.model.weight, full.model.weight)


def test_patience_two_survives_a_dip_that_fools_patience_one():
    data = _noisy(seed=0, noise=5.0)
    full = sweep_C(*data, SWEEP_CS, patience=0)
    curve = [full.val_top1[c] for c in SWEEP_CS]
    assert curve[1] < curve[0] <= curve[2] < max(curve), curve  # a one-C dip before the real peak
    assert sweep_C(*data, SWEEP_CS, patience=2).C == full.C
    assert sweep_C(*data, SWEEP_CS, patience=1).C == SWEEP_CS[0] != full.C
    with pytest.raises(ValueError, match="patience"):
        sweep_C(*data, SWEEP_CS, patience=-1)


def test_solver_reaches_the_tolerance_and_warm_start_converges_at_once():
    x, y = _data(seed=4, n_per_class=200, dim=32)
    C, tol = 0.5, 1e-5
    model = fit_logreg(x, y, C, tol=tol)
    xs = model.transform(x)
    yi = np.searchsorted(model.classes, y)
    logits = xs.astype(np.float64) @ model.weight.T + model.bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), yi] -= 1
    n = len(y)
    grad_w = p.T @ xs / n + model.weight / (C * n)
    assert max(np.abs(grad_w).max(), np.abs(p.sum(axis=0) / n).max()) <= 2 * tol  # float32 rounding slack
    again = fit_logreg(x, y, C, tol=tol, init=model)
    assert again.n_iter <= 1
    np.testing.assert_allclose(again.weight, model.weight, atol=1e-4)


def _task(seed=0, val=False, shuffle_test=False):
    x, y = _data(seed=seed, spread=5.0, n_per_class=50)
    splits = {"train": (x[:200], y[:200]), "test": (x[200:], y[200:])}
    if val:
        splits = {"train": (x[:150], y[:150]), "val": (x[150:200], y[150:200]), "test": (x[200:], y[200:])}
    if shuffle_test:
        rng = np.random.default_rng(1)
        splits["test"] = (rng.normal(size=x[200:].shape).astype(np.float32), rng.permutation(y[200:]))
    return ArrayTask(splits, seed=seed, num_classes=6)


def test_choice_of_C_never_looks_at_test():
    a = evaluate_linear(_task(), **LINEAR_DEFAULTS)
    b = evaluate_linear(_task(shuffle_test=True), **LINEAR_DEFAULTS)
    assert a.chosen == b.chosen
    assert a.chosen["val_source"].startswith("stratified 0.2 of train")
    grid = ["0.001", "0.01", "0.1", "1", "10"]
    evaluated = [f"{c:g}" for c in a.chosen["Cs_evaluated"]]
    assert list(a.chosen["val_top1"]) == evaluated == grid[: len(evaluated)]  # a prefix: early stop only
    full = evaluate_linear(_task(), **LINEAR_DEFAULTS | {"patience": 0})
    assert list(full.chosen["val_top1"]) == grid
    assert (a.predictions == a.labels).mean() > 0.5 and "top5" in a.metrics


def test_uses_dataset_val_split_and_is_deterministic():
    task = _task(val=True)
    out = evaluate_linear(task, **LINEAR_DEFAULTS)
    assert out.chosen["val_source"] == "dataset val split"
    again = evaluate_linear(task, **LINEAR_DEFAULTS)
    np.testing.assert_array_equal(out.predictions, again.predictions)
    assert out.chosen == again.chosen and out.metrics == again.metrics


def test_fixed_C_skips_the_sweep():
    out = evaluate_linear(_task(), **LINEAR_DEFAULTS | {"C": 0.5})
    assert out.chosen["C"] == 0.5 and "val_top1" not in out.chosen


def test_carve_val_falls_back_to_random_for_singleton_classes():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2])
    tr, va, how = carve_val(y, 0.3, seed=0)
    assert how == "random" and len(va) == 3 and sorted(np.concatenate([tr, va])) == list(range(9))


@pytest.mark.parametrize("kwargs, match", [({"C": -1.0}, "C must be > 0"), ({"Cs": []}, "non-empty"),
                                            ({"val_fraction": 1.5}, "val_fraction")])
def test_bad_options_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate_linear(_task(), **LINEAR_DEFAULTS | kwargs)


def test_spec_declares_every_option():
    import inspect

    spec = {s.name: s for s in Linear.register_protocols()}["linear"]
    assert set(inspect.signature(spec.evaluate).parameters) - {"task"} == set(spec.defaults)


@pytest.mark.gpu  # skipped without CUDA (tests/conftest.py)
def test_cuda_matches_cpu():
    x, y = _data()
    cpu = fit_logreg(x, y, 1.0, tol=1e-7)
    gpu = fit_logreg(x, y, 1.0, tol=1e-7, device="cuda")
    assert (cpu.predict(x) == gpu.predict(x)).mean() > 0.99


def test_standardizer_decides_constant_features_one_by_one_like_sklearn():
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    x = np.stack([1e5 + rng.normal(size=500), 5e-4 * rng.normal(size=500), np.full(500, 3.0)], axis=1)
    mean, scale = standardizer(x)
    ref = StandardScaler().fit(x)
    np.testing.assert_allclose(scale, ref.scale_, rtol=1e-5)
    np.testing.assert_allclose(mean, ref.mean_, rtol=1e-6)
