"""Label efficiency: accuracy against the number of labels per class, and the area under that curve, pure maths.

Why a protocol of its own rather than a ``shots`` sweep on ``fewshot`` or ``linear``: a record has one primary
metric, fixed by its ProtocolSpec, and a sweep's summary (the AUC) is a different quantity from one point's
accuracy; a separate protocol keeps both records honest while reusing their maths: the draws follow fewshot's
seeded per-class sampling, the classifier is the linear probe's L-BFGS logistic regression
(:func:`~benchmark.protocols.logreg.fit_logreg` / :func:`~benchmark.protocols.logreg.sweep_C`) or the DINO kNN
(:func:`~benchmark.protocols.neighbors.knn_classify`).

**Points.** Each n in ``shots`` (default 1, 2, 4, 8, 16, 64 labels per class) and, with ``include_all``, the whole
train split. A point larger than the smallest train class is skipped (it could not be drawn balanced) and listed
in ``chosen["skipped"]``. Only the train split is ever sampled; the dataset's val split is not used (its labels
would exceed the budget).

**Draws.** ``draws`` seeded draws per point (default 5; the ``all`` point is one, it has nothing to draw). Draw e
permutes every class's train indices with ``numpy.random.default_rng([seed, e])`` and point n takes the first n of
each class, so the draws are nested (draw e at 4 labels contains draw e at 2), deterministic for a seed, and the
curve of one draw is a coherent learning curve.

**C never sees test.** ``C=<number>``: that C everywhere. ``C=none`` (default): where the drawn subset has at least
``val_min_per_class`` samples per class, C is swept over ``Cs`` on a stratified ``val_fraction`` carved from the
drawn subset (seed = the run's seed), then the model is refit on the whole draw (exactly the linear probe's
procedure, :func:`~benchmark.protocols.logreg.sweep_C`, patience 2); below that, too few labels exist to validate
anything, and the fixed ``fallback_C`` (default 1.0) is used. ``chosen["C"]`` records the C of every draw and
``chosen["C_source"]`` how it was chosen at each point.

**No standardisation by default** (``standardize=false``, as ``fewshot``): per-feature statistics of 1 or 2
samples per class are noise, and dividing by them amplifies near-constant features. Measured on digits with
raw pixels: 1 label per class 64.8% unstandardised vs 54.8% standardised, AUC 0.870 vs 0.843 (all labels:
97.0% vs 97.4%). ``standardize=true`` uses the drawn subset's statistics only.

**Summary.** Per point: the mean accuracy over draws, the std (ddof=1) and a Student-t 95% interval of the mean
(clipped to [0, 1]; a single draw has the point value as its interval). The primary metric ``auc`` is the
trapezoid area under mean accuracy against log2(labels per class), divided by the x range, so it lies in [0, 1]
(a flat curve at accuracy a has AUC a). The ``all`` point sits at log2(train size / classes). A curve of one
point has that point's accuracy as its AUC. ``auc_ci95`` is the Student-t interval over the per-draw AUCs (draw e's
curve, with the shared ``all`` point); their mean equals ``auc``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from benchmark import checks
from benchmark.errors import DataError
from benchmark.protocols.logreg import DEFAULT_CS, carve_val, fit_logreg, sweep_C
from benchmark.protocols.metrics import mean_ci
from benchmark.protocols.neighbors import knn_classify
from benchmark.specs import EvalTask, ProtocolOutput, defaults_of
from benchmark.storage.chunked import RowSet

OWNER = "protocol 'labeleff'"
CLASSIFIERS: tuple[str, ...] = ("logreg", "knn")
DEFAULT_SHOTS: tuple[int, ...] = (1, 2, 4, 8, 16, 64)


@dataclass
class Point:
    """One point of the curve: ``shots`` (an int, or "all"), ``x`` = labels per class (the mean for "all"), the
    accuracy of each draw, the train size of each draw, and the C of each draw (logreg) with how it was chosen."""

    shots: int | str
    x: float
    runs: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    Cs: list[float] = field(default_factory=list)
    C_source: str = ""

    def summary(self) -> dict[str, Any]:
        mean, std, ci = mean_ci(self.runs)
        return {"shots": self.shots, "labels_per_class": self.x, "train_size": float(np.mean(self.sizes)),
                "mean": mean, "std": std, "ci95": [max(0.0, ci[0]), min(1.0, ci[1])], "runs": self.runs}



def curve_auc(labels_per_class: Sequence[float], accuracy: Sequence[float]) -> float:
    """Trapezoid area under ``accuracy`` against log2(``labels_per_class``) (sorted by x), over the x range."""
    order = np.argsort(np.asarray(labels_per_class, float), kind="stable")
    x = np.log2(np.asarray(labels_per_class, float)[order])
    y = np.asarray(accuracy, float)[order]
    if len(x) == 1 or x[-1] == x[0]:
        return float(np.mean(y))
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return area / float(x[-1] - x[0])


def class_permutations(labels: np.ndarray, seed: int, draw: int) -> list[np.ndarray]:
    """Each class's train indices (classes in sorted order) in the random order of draw ``draw``."""
    rng = np.random.default_rng([seed, draw])
    return [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]


def draw_indices(perms: Sequence[np.ndarray], shots: int) -> np.ndarray:
    """Sorted train indices of the first ``shots`` of every class's permutation (nested across ``shots``)."""
    return np.sort(np.concatenate([p[:shots] for p in perms]))


@dataclass
class CurveSettings:
    """The classifier options, as :func:`evaluate_labeleff` received them."""

    classifier: str = "logreg"
    C: float | None = None
    Cs: Sequence[float] = DEFAULT_CS
    fallback_C: float = 1.0
    val_min_per_class: int = 8
    val_fraction: float = 0.25
    standardize: bool = False
    max_iter: int = 1000
    tol: float = 1e-4
    k: int = 20
    temperature: float = 0.07
    device: str = "cpu"


def fit_predict(x: np.ndarray, y: np.ndarray, test_x: np.ndarray, s: CurveSettings, seed: int, num_classes: int,
                rows: np.ndarray | None = None) -> tuple[np.ndarray, float | None, str]:
    """Predictions for ``test_x`` from a classifier fitted on rows ``rows`` of ``x`` (all of ``x`` when None),
    labelled ``y``, only; (predictions, C, how C was chosen). The logistic regression reads those rows by index
    (:class:`~benchmark.storage.chunked.RowSet`): neither the draw nor its train/val parts are copied."""
    if s.classifier == "knn":
        kk = min(int(s.k), len(y))
        pred = knn_classify(x if rows is None else x[rows], y, test_x, [kk], num_classes=num_classes,
                            temperature=s.temperature, device=s.device).predictions[kk]
        return pred, None, f"knn k={kk}"
    common: dict[str, Any] = {"standardize": s.standardize, "max_iter": s.max_iter, "tol": s.tol, "device": s.device}
    at = np.arange(len(y)) if rows is None else rows
    if s.C is not None:
        return fit_logreg(RowSet.of((x, rows)), y, float(s.C), **common).predict(test_x), float(s.C), "fixed C"
    if _smallest_class(y) >= s.val_min_per_class:
        tr, va, how = carve_val(y, s.val_fraction, seed)
        sweep = sweep_C(RowSet.of((x, at[tr])), y[tr], RowSet.of((x, at[va])), y[va], s.Cs, patience=2, **common)
        return sweep.model.predict(test_x), sweep.C, f"validation ({how} {s.val_fraction:g} of the draw)"
    fallback = fit_logreg(RowSet.of((x, rows)), y, float(s.fallback_C), **common)
    return fallback.predict(test_x), float(s.fallback_C), "fallback_C"


def _smallest_class(y: np.ndarray) -> int:
    counts = np.unique(y, return_counts=True)[1]
    return int(counts.min()) if len(counts) else 0


def label_efficiency(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
                     shots: Sequence[int] = DEFAULT_SHOTS, include_all: bool = True, draws: int = 5, seed: int = 0,
                     settings: CurveSettings | None = None, num_classes: int | None = None
                     ) -> tuple[list[Point], list[int]]:
    """The curve's points (in increasing labels per class) and the skipped ``shots`` (larger than the smallest
    train class). Raises ContractError for broken features, DataError for an empty split or no point left."""
    s = settings or CurveSettings()
    checks.check_splits("labeleff", (train_x, train_y), ("test", test_x, test_y))
    train_y, test_y = np.asarray(train_y, np.int64), np.asarray(test_y, np.int64)
    if len(train_y) == 0 or len(test_y) == 0:
        raise DataError(f"{OWNER}: the train and test splits must be non-empty")
    n_cls = int(num_classes if num_classes is not None else max(train_y.max(), test_y.max()) + 1)
    smallest, n_present = _smallest_class(train_y), len(np.unique(train_y))
    wanted = sorted({int(n) for n in shots})
    kept, skipped = [n for n in wanted if n <= smallest], [n for n in wanted if n > smallest]
    points = [Point(n, float(n)) for n in kept]
    perms = [class_permutations(train_y, seed, e) for e in range(int(draws))] if kept else []
    for p in points:
        for e, perm in enumerate(perms):
            idx = draw_indices(perm, int(p.shots))
            _run(p, train_x, train_y[idx], test_x, test_y, s, seed * 1000 + e, n_cls, idx)
    if include_all:
        p = Point("all", len(train_y) / n_present)
        _run(p, train_x, train_y, test_x, test_y, s, seed, n_cls)
        points.append(p)
    if not points:
        raise DataError(f"{OWNER}: every point of shots={wanted} exceeds the smallest train class ({smallest} "
                        "samples) and include_all is false; pass smaller shots or include_all=true")
    return points, skipped


def _run(p: Point, x: np.ndarray, y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, s: CurveSettings, seed: int,
         n_cls: int, rows: np.ndarray | None = None) -> None:
    pred, C, how = fit_predict(x, y, test_x, s, seed, n_cls, rows)
    p.runs.append(float((pred == test_y).mean()))
    p.sizes.append(len(y))
    if C is not None:
        p.Cs.append(C)
    p.C_source = how


def per_draw_auc(points: Sequence[Point]) -> list[float]:
    """The AUC of each draw's own curve (a point with a single run, ``all``, is shared by every draw)."""
    n = max(len(p.runs) for p in points)
    xs = [p.x for p in points]
    return [curve_auc(xs, [p.runs[e] if len(p.runs) > 1 else p.runs[0] for p in points]) for e in range(n)]


def evaluate_labeleff(task: EvalTask, shots: Sequence[int] = DEFAULT_SHOTS, include_all: bool = True,
                      draws: int = 5, classifier: str = "logreg", C: float | None = None,
                      Cs: Sequence[float] = DEFAULT_CS, fallback_C: float = 1.0, val_min_per_class: int = 8,
                      val_fraction: float = 0.25, standardize: bool = False, max_iter: int = 1000,
                      tol: float = 1e-4, k: int = 20, temperature: float = 0.07) -> ProtocolOutput:
    """Accuracy at every point of ``shots`` labels per class (plus all labels), its AUC the primary metric.

    Metrics: ``auc`` (module docstring) with ``auc_std``, ``auc_ci95`` and ``auc_runs`` (per draw);
    ``top1@shots=<n>`` (and ``top1@shots=all``) the mean accuracy per point; ``curve`` a list of
    ``{shots, labels_per_class, train_size, mean, std, ci95, runs}`` in increasing labels per class; ``n_test``.
    ``chosen``: the points run and skipped, the C per draw and its source per point (logreg). Returns no
    predictions (one set per draw and point exists).
    """
    options: dict[str, Any] = {"shots": shots, "include_all": include_all, "draws": draws, "classifier": classifier,
                               "C": C, "Cs": Cs, "fallback_C": fallback_C, "val_min_per_class": val_min_per_class,
                               "val_fraction": val_fraction, "standardize": standardize, "max_iter": max_iter,
                               "tol": tol, "k": k, "temperature": temperature}
    validate_labeleff(options)
    shot_list = [int(cast(int, shots))] if checks.is_int(shots) else [int(n) for n in shots]
    train_x, train_y = task.features("train")
    test_x, test_y = task.features("test")
    settings = CurveSettings(classifier, C, list(Cs), fallback_C, int(val_min_per_class), float(val_fraction),
                        bool(standardize), int(max_iter), float(tol), int(k), float(temperature), task.device)
    points, skipped = label_efficiency(train_x, train_y, test_x, test_y, shots=shot_list,
                                       include_all=bool(include_all), draws=int(draws), seed=task.seed,
                                       settings=settings, num_classes=task.num_classes)
    curve = [p.summary() for p in points]
    aucs = per_draw_auc(points)
    auc = curve_auc([p.x for p in points], [c["mean"] for c in curve])
    _, auc_std, auc_ci = mean_ci(aucs)
    metrics: dict[str, Any] = {"auc": auc, "auc_std": auc_std, "auc_ci95": auc_ci, "auc_runs": aucs}
    metrics.update({f"top1@shots={c['shots']}": c["mean"] for c in curve})
    metrics.update(curve=curve, n_test=int(len(test_y)))
    chosen: dict[str, Any] = {"points": [p.shots for p in points], "skipped": skipped,
                              "skipped_reason": f"larger than the smallest train class ({_smallest_class(train_y)})"
                              if skipped else None, "classifier": classifier,
                              "C_source": {str(p.shots): p.C_source for p in points}}
    if classifier == "logreg":
        chosen["C"] = {str(p.shots): p.Cs for p in points}
    return ProtocolOutput(None, None, metrics, chosen)


#: The options and their defaults, read from the signature of :func:`evaluate_labeleff` (the one source).
LABELEFF_DEFAULTS: dict[str, Any] = defaults_of(evaluate_labeleff)


def validate_labeleff(options: Mapping[str, Any]) -> None:
    """The labeleff spec's validator: OptionError for values :func:`evaluate_labeleff` cannot use."""
    o = {**LABELEFF_DEFAULTS, **options}
    checks.need_int_list(OWNER, "shots", o["shots"])
    checks.need_bool(OWNER, "include_all", o["include_all"])
    if not o["include_all"] and not (checks.is_int(o["shots"]) or list(o["shots"])):
        raise checks.bad_option(OWNER, "shots", "non-empty when include_all is false", o["shots"])
    checks.need_choice(OWNER, "classifier", o["classifier"], CLASSIFIERS)
    for name in ("draws", "max_iter", "k", "val_min_per_class"):
        checks.need_int(OWNER, name, o[name], 2 if name == "val_min_per_class" else 1)
    checks.need_number(OWNER, "C", o["C"], gt=0, optional=True, what="> 0 (or none to choose it on validation "
                                                                     "data carved from each draw)")
    checks.need_number_list(OWNER, "Cs", o["Cs"])
    for name in ("fallback_C", "tol", "temperature"):
        checks.need_number(OWNER, name, o[name], gt=0)
    checks.need_fraction(OWNER, "val_fraction", o["val_fraction"])
    checks.need_bool(OWNER, "standardize", o["standardize"])
