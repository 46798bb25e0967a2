"""Few-shot classification on frozen features, repeated over seeded draws of the training shots, pure maths.

Each *experiment* draws ``shots`` training samples per class from the train split, fits a classifier on them and
scores the whole test split. The result is the list of per-experiment accuracies and their mean, standard
deviation (ddof=1) and a 95% confidence interval of the mean (Student t over experiments).

Two sampling/classifier recipes (``style``):

``"repbench"`` (default)
    Experiment ``e`` draws ``shots`` samples of every class without replacement with
    ``numpy.random.default_rng([seed, e])`` (classes with fewer samples contribute all they have). The classifier
    is the linear probe's L-BFGS logistic regression (:func:`benchmark.protocols.logreg.fit_logreg`) at a fixed C
    (default 1.0, run to convergence), or the DINO kNN (:func:`benchmark.protocols.neighbors.knn_classify`, k clipped
    to the number of shots drawn).

``"mteb"``
    MTEB's ``AbsTaskClassification`` protocol, reproduced exactly so scores compare with MTEB's published ones
    (e.g. all-MiniLM-L6-v2 on Banking77Classification: 80.04):

    * ``n_experiments=10``, ``samples_per_label=8`` (MTEB defaults, overridable per task in its metadata);
    * undersampling (``_undersample_data``): ``idxs = arange(n_train)``, shuffled *in place* with numpy's
      global RNG at each experiment (the same array is reshuffled, so draws compound), then the first
      ``samples_per_label`` indices of each label are taken in shuffled order. The global RNG is re-seeded
      with 42 before every shuffle: ``AbsTask.__init__`` seeds it with 42 and every ``Evaluator.__init__``
      (built once per experiment, after the draw) calls ``np.random.seed(42)`` again;
    * classifier: ``sklearn.linear_model.LogisticRegression(random_state=42, max_iter=100)`` (``n_jobs=-1``
      in MTEB, which does not change the result); defaults otherwise (C=1.0, lbfgs, L2, tol=1e-4) and no
      feature scaling;
    * the full test split is scored (MTEB subsamples some large test sets to 2048 in the task's
      ``dataset_transform``; Banking77's 3080 are all used); the main score ``accuracy`` is the mean over
      experiments.

    Source: embeddings-benchmark/mteb, ``mteb/abstasks/AbsTaskClassification.py`` (``_evaluate_subset``,
    ``_undersample_data``), ``mteb/evaluation/evaluators/ClassificationEvaluator.py``
    (``logRegClassificationEvaluator``) and ``mteb/evaluation/evaluators/Evaluator.py`` (MTEB 1.x).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark import checks
from benchmark.errors import DataError, OptionError
from benchmark.protocols.logreg import fit_logreg
from benchmark.protocols.neighbors import knn_classify
from benchmark.specs import EvalTask, ProtocolOutput, defaults_of

OWNER = "protocol 'fewshot'"
STYLES: tuple[str, ...] = ("repbench", "mteb")
CLASSIFIERS: tuple[str, ...] = ("logreg", "knn")
MTEB_SEED = 42
MTEB_MAX_ITER = 100


@dataclass
class FewshotResult:
    """Per-experiment accuracies (fractions in [0, 1]) and their summary."""

    accuracies: list[float]
    train_sizes: list[int] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0

    def ci95(self) -> tuple[float, float]:
        """95% confidence interval of the mean accuracy (Student t with n-1 degrees of freedom)."""
        n = len(self.accuracies)
        if n < 2:
            return self.mean, self.mean
        from scipy.stats import t

        half = float(t.ppf(0.975, n - 1)) * self.std / np.sqrt(n)
        return self.mean - half, self.mean + half


def sample_shots(labels: np.ndarray, shots: int, seed: int, experiment: int) -> np.ndarray:
    """Sorted indices of ``shots`` samples per class (all of a class that has fewer), drawn without replacement."""
    rng = np.random.default_rng([seed, experiment])
    picked = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        picked.append(members if len(members) <= shots else rng.choice(members, shots, replace=False))
    return np.sort(np.concatenate(picked))


def mteb_undersample(labels: np.ndarray, samples_per_label: int, n_experiments: int,
                     seed: int = MTEB_SEED) -> list[np.ndarray]:
    """The train indices MTEB's ``_undersample_data`` picks in each experiment, in its (shuffled) order."""
    idxs = np.arange(len(labels))
    draws = []
    for _ in range(n_experiments):
        np.random.RandomState(seed).shuffle(idxs)  # == np.random.seed(seed); np.random.shuffle(idxs)
        counter: dict[int, int] = defaultdict(int)
        chosen = []
        for i in idxs:
            if counter[labels[i]] < samples_per_label:
                chosen.append(i)
                counter[labels[i]] += 1
        draws.append(np.asarray(chosen, dtype=np.int64))
    return draws


def _mteb_logreg(x: np.ndarray, y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(random_state=MTEB_SEED, max_iter=MTEB_MAX_ITER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # MTEB hits max_iter=100 too; kept for parity
        clf.fit(x, y)
    return clf.predict(test_x)


def fewshot_eval(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, *,
                 shots: int = 8, experiments: int = 10, seed: int = 0, style: str = "repbench",
                 classifier: str = "logreg", C: float = 1.0, standardize: bool = False, max_iter: int = 1000,
                 tol: float = 1e-4, k: int = 20, temperature: float = 0.07, device: str = "cpu"
                 ) -> FewshotResult:
    """Run ``experiments`` few-shot draws and score each on the whole test split.

    ``style="mteb"`` ignores ``seed``, ``C``, ``standardize``, ``max_iter``, ``tol``, ``k``, ``temperature`` and
    ``device`` (MTEB fixes them; see the module docstring) and needs ``classifier="logreg"``.
    Raises OptionError for bad options, ContractError for non-finite or misshapen features, DataError for an
    empty split.
    """
    validate_fewshot({"style": style, "shots": shots, "experiments": experiments, "classifier": classifier,
                      "C": C, "standardize": standardize, "max_iter": max_iter, "tol": tol, "k": k,
                      "temperature": temperature})
    checks.check_splits("fewshot", (train_x, train_y), ("test", test_x, test_y))
    train_y = np.asarray(train_y, np.int64)
    test_y = np.asarray(test_y, np.int64)
    if len(train_y) == 0 or len(test_y) == 0:
        raise DataError(f"{OWNER}: the train and test splits must be non-empty")
    accs, sizes = [], []
    k_used: set[int] = set()
    if style == "mteb":
        draws = mteb_undersample(train_y, int(shots), int(experiments))
        settings = {"seed": MTEB_SEED, "samples_per_label": int(shots), "n_experiments": int(experiments),
                    "classifier": f"sklearn LogisticRegression(random_state={MTEB_SEED}, max_iter={MTEB_MAX_ITER})",
                    "scaling": "none", "test": "full split"}
    else:
        draws = [sample_shots(train_y, int(shots), seed, e) for e in range(int(experiments))]
        settings = {"seed": seed, "shots": int(shots), "experiments": int(experiments), "classifier": classifier}
    for idx in draws:
        x, y = train_x[idx], train_y[idx]
        if style == "mteb":
            pred = _mteb_logreg(x, y, test_x)
        elif classifier == "logreg":
            pred = fit_logreg(x, y, C, standardize=standardize, max_iter=max_iter, tol=tol, device=device
                              ).predict(test_x)
        else:
            kk = min(int(k), len(idx))
            k_used.add(kk)
            pred = knn_classify(x, y, test_x, [kk], num_classes=int(max(train_y.max(), test_y.max())) + 1,
                                temperature=temperature, device=device).predictions[kk]
        accs.append(float((pred == test_y).mean()))
        sizes.append(len(idx))
    if k_used:
        settings["k_used"] = sorted(k_used)
    # what was really drawn: a class with fewer train samples than `shots` gives all it has, and the record says so
    per_class = [np.bincount(train_y[idx])[np.unique(train_y[idx])] for idx in draws if len(idx)]
    drawn = (int(min(c.min() for c in per_class)), int(max(c.max() for c in per_class))) if per_class else (0, 0)
    settings["shots_per_class"] = list(drawn)
    if drawn[0] < int(shots):
        settings["note"] = (f"{shots} shots per class asked, as few as {drawn[0]} drawn: some classes have fewer "
                            "train samples")
    return FewshotResult(accs, sizes, settings)


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
    options: dict[str, Any] = {"style": style, "shots": shots, "experiments": experiments, "classifier": classifier,
                               "C": C, "standardize": standardize, "max_iter": max_iter, "tol": tol, "k": k,
                               "temperature": temperature}
    validate_fewshot(options)  # before any feature is extracted
    train_x, train_y = task.features("train")
    test_x, test_y = task.features("test")
    res = fewshot_eval(train_x, train_y, test_x, test_y, seed=task.seed, device=task.device, **options)
    low, high = res.ci95()
    metrics = {"top1": res.mean, "top1_mean": res.mean, "top1_std": res.std, "top1_ci95": [low, high],
               "top1_runs": res.accuracies, "experiments": len(res.accuracies),
               "train_size_mean": float(np.mean(res.train_sizes))}
    return ProtocolOutput(None, None, metrics, {"settings": res.settings})


#: The options and their defaults, read from the signature of :func:`evaluate_fewshot` (the one source).
FEWSHOT_DEFAULTS: dict[str, Any] = defaults_of(evaluate_fewshot)


def validate_fewshot(options: Mapping[str, Any]) -> None:
    """The fewshot spec's validator: OptionError for values :func:`evaluate_fewshot` cannot use (missing keys
    take their defaults), including style=mteb with a classifier other than logreg."""
    o = {**FEWSHOT_DEFAULTS, **options}
    checks.need_choice(OWNER, "style", o["style"], STYLES)
    checks.need_choice(OWNER, "classifier", o["classifier"], CLASSIFIERS)
    for name in ("shots", "experiments", "max_iter", "k"):
        checks.need_int(OWNER, name, o[name], 1)
    for name in ("C", "tol", "temperature"):
        checks.need_number(OWNER, name, o[name], gt=0)
    checks.need_bool(OWNER, "standardize", o["standardize"])
    if o["style"] == "mteb" and o["classifier"] != "logreg":
        raise OptionError(f"{OWNER}: style=mteb uses MTEB's logistic regression; set classifier=logreg "
                          "(MTEB's kNN variant is not reproduced)")
