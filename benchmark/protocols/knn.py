"""The ``knn`` protocol: k-nearest-neighbour classification on frozen features (the DINO protocol).

The maths (chunked cosine top-k, DINO-weighted or uniform voting, and why it matches scikit-learn) is
:mod:`benchmark.protocols.neighbors`; this module is the plugin: options, validation, registration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from benchmark.checks import check_splits, need_choice, need_int_list, need_number
from benchmark.errors import OptionError
from benchmark.protocols.neighbors import KNN_PRECISIONS, OWNER, WEIGHTINGS, knn_classify, topk_accuracy
from benchmark.specs import EvalTask, ProtocolOutput, defaults_of


def _ks(value: int | Sequence[int]) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(cast(int, value))]


def validate_knn(options: Mapping[str, Any]) -> None:
    """The knn spec's validator: raises OptionError for option values :func:`evaluate_knn` cannot use
    (missing keys take their defaults). Whether k fits the train split is known only once features exist."""
    o = {**KNN_DEFAULTS, **options}
    need_int_list(OWNER, "k", o["k"], allow_empty=False)
    need_int_list(OWNER, "ks", o["ks"])
    need_number(OWNER, "temperature", o["temperature"], gt=0)
    need_choice(OWNER, "weighting", o["weighting"], WEIGHTINGS)
    need_choice(OWNER, "precision", o["precision"], KNN_PRECISIONS)


def evaluate_knn(task: EvalTask, k: int | Sequence[int] = 20, ks: Sequence[int] = (10, 20, 100, 200),
                 temperature: float = 0.07, weighting: str = "dino", precision: str = "fp32") -> ProtocolOutput:
    """kNN on L2-normalised features (cosine similarity), DINO weighted voting by default.

    ``k`` is the primary k (predictions are for it; a list makes its first element primary and reports all).
    Every k in ``ks`` is reported as ``top1@k=<k>`` from the same top-max(k) pass; those larger than the train
    set are skipped and listed in ``chosen["ks_skipped"]``. A primary k larger than the train set is an error.
    ``top5`` (and ``top5@k=<k>``) are reported when there are more than 5 classes. Raises OptionError for bad
    options (:func:`validate_knn`, before any feature is read), ContractError for broken features.
    """
    validate_knn({"k": k, "ks": ks, "temperature": temperature, "weighting": weighting, "precision": precision})
    primary_list = _ks(k)
    primary = primary_list[0]
    train_x, train_y = task.features("train")
    test_x, test_y = task.features("test")
    check_splits("knn", (train_x, train_y), ("test", test_x, test_y))
    if primary > len(train_y):
        raise OptionError(f"protocol 'knn': k={primary} is larger than the train split ({len(train_y)} samples); "
                          f"pass knn[k=<at most {len(train_y)}>]")
    wanted = sorted(set(primary_list) | set(_ks(ks)))
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


#: The options and their defaults, read from the signature of :func:`evaluate_knn` (the one source).
KNN_DEFAULTS: dict[str, Any] = defaults_of(evaluate_knn)
