"""The ``linear`` protocol: a linear probe, multinomial logistic regression on frozen features with C chosen on a
validation split. The maths (L-BFGS, the objective, the C sweep, speed notes) is :mod:`benchmark.protocols.logreg`;
this module is the plugin: options, validation, registration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from benchmark import checks
from benchmark.protocols.logreg import (
    DEFAULT_CS,
    OWNER,
    LogReg,
    carve_val,
    fit_logreg,
    solver_chunk_rows,
    sweep_C,
)
from benchmark.protocols.neighbors import topk_accuracy
from benchmark.specs import EvalTask, ProtocolOutput, defaults_of
from benchmark.storage.chunked import RowSet, row_slices


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
    validate_linear({"C": C, "Cs": Cs, "val_fraction": val_fraction, "standardize": standardize,
                     "max_iter": max_iter, "tol": tol, "patience": patience})
    train_x, train_y = task.features("train")
    test_x, test_y = task.features("test")
    checks.check_splits("linear", (train_x, train_y), ("test", test_x, test_y))
    train_rows = RowSet.of(train_x)
    if task.has_split("val"):
        val_x, val_y = task.features("val")
        checks.check_features("linear", "val", val_x, val_y, width=train_x.shape[1])
        val_rows = RowSet.of(val_x)
        source = "dataset val split"
    elif C is None:  # rows of train, taken by index: the split is never copied
        tr, va, how = carve_val(train_y, float(val_fraction), task.seed)
        train_rows, val_rows = RowSet.of((train_x, tr)), RowSet.of((train_x, va))
        train_y, val_y = train_y[tr], train_y[va]
        source = f"{how} {val_fraction:g} of train, seed {task.seed}"
    else:
        val_rows, val_y = RowSet(()), train_y[:0]
    common: dict[str, Any] = {"standardize": bool(standardize), "max_iter": int(max_iter), "tol": float(tol),
                              "device": task.device}
    chosen: dict[str, Any]
    if C is not None:
        model = fit_logreg(RowSet(train_rows.parts + val_rows.parts), np.concatenate([train_y, val_y]), float(C),
                           **common)
        chosen = {"C": float(C), "n_iter": model.n_iter}
    else:
        sweep = sweep_C(train_rows, train_y, val_rows, val_y, Cs, patience=int(patience), **common)
        model = sweep.model
        chosen = {"C": sweep.C, "val_source": source, "val_top1": {f"{c:g}": a for c, a in sweep.val_top1.items()},
                  "Cs_evaluated": sweep.evaluated, "n_iter": model.n_iter}
    best, top5 = _ranked(model, test_x)
    metrics: dict[str, Any] = {}
    if top5 is not None:
        metrics["top5"] = topk_accuracy(top5, test_y)
    if C is None:
        metrics["val_top1"] = sweep.val_top1[sweep.C]
    return ProtocolOutput(best, test_y, metrics, chosen)


def _ranked(model: LogReg, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(predicted class, the 5 best classes when there are more than 5) of every row, scored by chunks of rows
    (one chunk when the (rows, classes) scores fit in :data:`~benchmark.protocols.logreg.SOLVER_CHUNK_BYTES`)."""
    k = len(model.classes)
    best, top5 = [], []
    for sl in row_slices(len(x), solver_chunk_rows(len(x), k, torch.device("cpu"))):
        scores = model.decision_function(x[sl])
        best.append(model.classes[scores.argmax(axis=1)])
        if k > 5:
            top5.append(model.classes[np.argsort(-scores, axis=1, kind="stable")[:, :5]])
    if not best:
        return model.classes[:0], (model.classes[:0].reshape(0, 5) if k > 5 else None)
    return np.concatenate(best), (np.concatenate(top5) if top5 else None)


#: The options and their defaults, read from the signature of :func:`evaluate_linear` (the one source).
LINEAR_DEFAULTS: dict[str, Any] = defaults_of(evaluate_linear)


def validate_linear(options: Mapping[str, Any]) -> None:
    """The linear spec's validator: OptionError for values :func:`evaluate_linear` cannot use (missing keys take
    their defaults; Cs is checked even with a fixed C)."""
    o = {**LINEAR_DEFAULTS, **options}
    checks.need_number(OWNER, "C", o["C"], gt=0, optional=True, what="> 0 (or none to choose it on validation data)")
    checks.need_number_list(OWNER, "Cs", o["Cs"])
    checks.need_fraction(OWNER, "val_fraction", o["val_fraction"])
    checks.need_bool(OWNER, "standardize", o["standardize"])
    checks.need_int(OWNER, "max_iter", o["max_iter"], 1)
    checks.need_number(OWNER, "tol", o["tol"], gt=0)
    checks.need_int(OWNER, "patience", o["patience"], 0)
