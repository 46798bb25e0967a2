"""Built-in frozen-feature protocols: ``knn``, ``linear``, ``fewshot``. A plain plugin module.

Each ``evaluate(task, **options)`` reads cached features from the task, runs the maths in
:mod:`benchmark.protocols` on ``task.device`` and returns a :class:`ProtocolOutput`. All accuracies are fractions
in [0, 1]. Hyperparameters are never chosen on the test split.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.hookspecs import hookimpl
from benchmark.protocols.fewshot import fewshot_eval
from benchmark.protocols.knn import knn_classify, topk_accuracy
from benchmark.protocols.linear import DEFAULT_CS, carve_val, fit_logreg, sweep_C
from benchmark.specs import EvalTask, ProtocolOutput, ProtocolSpec

KNN_DEFAULTS: dict[str, Any] = {"k": 20, "ks": [10, 20, 100, 200], "temperature": 0.07, "weighting": "dino",
                                "precision": "fp32"}
LINEAR_DEFAULTS: dict[str, Any] = {"C": None, "Cs": list(DEFAULT_CS), "val_fraction": 0.2, "standardize": True,
                                   "max_iter": 1000, "tol": 1e-4, "patience": 2}
FEWSHOT_DEFAULTS: dict[str, Any] = {"style": "repbench", "shots": 8, "experiments": 10, "classifier": "logreg",
                                    "C": 1.0, "standardize": False, "max_iter": 1000, "tol": 1e-4, "k": 20,
                                    "temperature": 0.07}


def _ks(value: Any, name: str) -> list[int]:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        return [int(v) for v in items]
    except (TypeError, ValueError):
        raise ValueError(f"knn: option {name} must be an integer or a list of integers, got {value!r}") from None


def evaluate_knn(task: EvalTask, k: int | Sequence[int] = 20, ks: Sequence[int] = (10, 20, 100, 200),
                 temperature: float = 0.07, weighting: str = "dino", precision: str = "fp32") -> ProtocolOutput:
    """kNN on L2-normalised features (cosine similarity), DINO weighted voting by default.

    ``k`` is the primary k (predictions are for it; a list makes its first element primary and reports all).
    Every k in ``ks`` is reported as ``top1@k=<k>`` from the same top-max(k) pass; those larger than the train
    set are skipped and listed in ``chosen["ks_skipped"]``. A primary k larger than the train set is an error.
    ``top5`` (and ``top5@k=<k>``) are reported when there are more than 5 classes.
    """
    primary_list = _ks(k, "k")
    primary = primary_list[0]
    train_x, train_y = task.features("train")
    test_x, test_y = task.features("test")
    if primary > len(train_y):
        raise ValueError(f"knn: k={primary} is larger than the train split ({len(train_y)} samples); "
                         f"pass knn[k=<at most {len(train_y)}>]")
    wanted = sorted(set(primary_list) | set(_ks(ks, "ks")))
    skipped = [kk for kk in wanted if kk > len(train_y)]
    run_ks = [kk for kk in wanted if kk <= len(train_y)]
    top_m = 5 if task.num_classes > 5 else 0
    result = knn_classify(train_x, train_y, test_x, run_ks, num_classes=task.num_classes, weighting=weighting,
                          temperature=temperature, device=task.device, precision=precision, top_classes=top_m)
    metrics: dict[str, Any] = {}
    for kk in run_ks:
        metrics[f"top1@k={kk}"] = float((result.predictions[kk] == test_y).mean()) if len(test_y) else float("nan")
        if top_m:
            metrics[f"top5@k={kk}"] = topk_accuracy(result.topk_classes[kk], test_y)
    if top_m:
        metrics["top5"] = metrics[f"top5@k={primary}"]
    chosen: dict[str, Any] = {"ks_skipped": skipped} if skipped else {}
    return ProtocolOutput(result.predictions[primary], test_y, metrics, chosen)


def evaluate_linear(task: EvalTask, C: float | None = None, Cs: Sequence[float] = DEFAULT_CS,
                    val_fraction: float = 0.2, standardize: bool = True, max_iter: int = 1000,
                    tol: float = 1e-4, patience: int = 2) -> ProtocolOutput:
    """Multinomial logistic regression by L-BFGS (see :mod:`benchmark.protocols.linear`).

    With ``C`` set, fit on train (plus val when the dataset has one) at that C. Otherwise choose C from ``Cs`` on
    the dataset's val split, or on a seeded stratified ``val_fraction`` of train (seed ``task.seed``), then
    refit on train+val. The sweep goes from strong to weak regularisation and stops after ``patience``
    consecutive Cs below the best validation accuracy so far (0: every C). ``chosen`` records C, where the
    validation data came from, the accuracy per evaluated C and ``Cs_evaluated``.
    """
    train_x, train_y = task.features("train")
    test_x, test_y = task.features("test")
    if task.has_split("val"):
        val_x, val_y = task.features("val")
        source = "dataset val split"
    elif C is None:
        tr, va, how = carve_val(train_y, float(val_fraction), task.seed)
        train_x, train_y, val_x, val_y = train_x[tr], train_y[tr], train_x[va], train_y[va]
        source = f"{how} {val_fraction:g} of train, seed {task.seed}"
    else:
        val_x, val_y = train_x[:0], train_y[:0]
    common = {"standardize": bool(standardize), "max_iter": int(max_iter), "tol": float(tol), "device": task.device}
    chosen: dict[str, Any]
    if C is not None:
        model = fit_logreg(np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y]), float(C), **common)
        chosen = {"C": float(C), "n_iter": model.n_iter}
    else:
        sweep = sweep_C(train_x, train_y, val_x, val_y, Cs, patience=int(patience), **common)
        model = sweep.model
        chosen = {"C": sweep.C, "val_source": source, "val_top1": {f"{c:g}": a for c, a in sweep.val_top1.items()},
                  "Cs_evaluated": sweep.evaluated, "n_iter": model.n_iter}
    scores = model.decision_function(test_x)
    metrics: dict[str, Any] = {}
    if len(model.classes) > 5:
        top5 = model.classes[np.argsort(-scores, axis=1, kind="stable")[:, :5]]
        metrics["top5"] = topk_accuracy(top5, test_y)
    if C is None:
        metrics["val_top1"] = sweep.val_top1[sweep.C]
    return ProtocolOutput(model.classes[scores.argmax(axis=1)], test_y, metrics, chosen)


def evaluate_fewshot(task: EvalTask, style: str = "repbench", shots: int = 8, experiments: int = 10,
                     classifier: str = "logreg", C: float = 1.0, standardize: bool = False, max_iter: int = 1000,
                     tol: float = 1e-4, k: int = 20, temperature: float = 0.07) -> ProtocolOutput:
    """Few-shot accuracy over ``experiments`` draws of ``shots`` train samples per class.

    Returns NO predictions: one test prediction set per experiment exists, and the score is their mean.
    ``metrics["top1"]`` is the mean accuracy over experiments (the primary metric), with ``top1_std`` (ddof=1),
    ``top1_ci95`` = [low, high] (Student-t interval of the mean over experiments, the uncertainty that matters
    here) and ``top1_runs`` (the per-experiment list). With no predictions returned, the harness records these
    metrics as they are. ``style="mteb"`` follows MTEB's classification protocol exactly (seed 42).
    """
    train_x, train_y = task.features("train")
    test_x, test_y = task.features("test")
    res = fewshot_eval(train_x, train_y, test_x, test_y, shots=int(shots), experiments=int(experiments),
                       seed=task.seed, style=style, classifier=classifier, C=float(C),
                       standardize=bool(standardize), max_iter=int(max_iter), tol=float(tol), k=int(k),
                       temperature=float(temperature), device=task.device)
    low, high = res.ci95()
    metrics = {"top1": res.mean, "top1_mean": res.mean, "top1_std": res.std, "top1_ci95": [low, high],
               "top1_runs": res.accuracies, "experiments": len(res.accuracies),
               "train_size_mean": float(np.mean(res.train_sizes))}
    return ProtocolOutput(None, None, metrics, {"settings": res.settings})


@hookimpl
def register_protocols() -> list[ProtocolSpec]:
    return [
        ProtocolSpec("knn", evaluate=evaluate_knn, primary_metric="top1", defaults=dict(KNN_DEFAULTS),
                     description="k-NN on L2-normalised features, DINO exp(sim/T) voting (k=20, T=0.07); "
                                 "top1@k for every k in ks"),
        ProtocolSpec("linear", evaluate=evaluate_linear, primary_metric="top1", defaults=dict(LINEAR_DEFAULTS),
                     description="multinomial logistic regression (L-BFGS, scikit-learn's objective) on "
                                 "standardised features, C swept on a validation split"),
        ProtocolSpec("fewshot", evaluate=evaluate_fewshot, primary_metric="top1", defaults=dict(FEWSHOT_DEFAULTS),
                     description="logistic regression (or kNN) on `shots` samples per class, mean over "
                                 "`experiments` seeded draws; style=mteb reproduces MTEB classification"),
    ]
