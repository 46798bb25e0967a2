"""Checks of what plugins return: encoder batches, dataset splits, protocol outputs.

The harness (:class:`~benchmark.features.task.HarnessTask`, :func:`~benchmark.features.extract.extract`, the
runner) and plugin authors' tests (:mod:`benchmark.testing`) run the same functions. Each raises
:class:`~benchmark.errors.ContractError` whose message names the plugin (encoder, dataset or protocol label),
the split where there is one, what is wrong and what to do; none of them changes what it checks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from benchmark.checks import check_scale
from benchmark.errors import ContractError, RepbenchError
from benchmark.specs import Dataset, ProtocolOutput, Split
from benchmark.storage.chunked import nonfinite_rows

ENCODER_FIX = "fix the encoder plugin: encode(batch) must return float features of shape (batch size, embed_dim)"
DATASET_FIX = "fix the dataset plugin"


def _first(rows: np.ndarray, shown: int = 5) -> str:
    """The first of the positions ``rows``, for messages."""
    text = ", ".join(str(int(r)) for r in rows[:shown])
    return text + (f", ... ({len(rows)} in all)" if len(rows) > shown else "")


# --- encoder output -------------------------------------------------------------------------------------------
def check_batch(out: np.ndarray, rows: int, embed_dim: int | None, encoder: str) -> None:
    """One encoded batch: a 2-D array with ``rows`` rows and, when ``embed_dim`` is known, that many columns."""
    if out.ndim != 2 or out.shape[0] != rows:
        raise ContractError(f"encoder {encoder!r} returned features of shape {tuple(out.shape)} for a batch of "
                            f"{rows} samples, expected ({rows}, embed_dim); {ENCODER_FIX}")
    check_width(out.shape[1], embed_dim, encoder)


def check_width(width: int, embed_dim: int | None, encoder: str, split: str | None = None) -> None:
    """Features ``width`` wide from an encoder that declares ``embed_dim`` (None: not known yet, anything goes)."""
    if embed_dim is not None and width != embed_dim:
        where = f" on split {split!r}" if split else ""
        raise ContractError(f"encoder {encoder!r} returned features {width} wide{where} but declares "
                            f"embed_dim={embed_dim}; make embed_dim the width encode() returns")


def precision_hint(precision: str) -> str:
    """What to do about non-finite features at ``precision``."""
    if precision != "fp32":
        return f"{precision} autocast can overflow: rerun with --precision fp32"
    return ("this already ran in fp32, so the encoder itself produces them: check its weights and preprocessing "
            "(or report it to the plugin's author)")


def check_finite(features: np.ndarray, encoder: str, precision: str = "fp32",
                 positions: np.ndarray | None = None) -> None:
    """Every value of ``features`` (N, D) is finite. ``positions[i]`` is the input position of row ``i``
    (the identity when None), so the message names samples as the caller numbers them."""
    bad_rows, _ = nonfinite_rows(features)  # in row chunks: no mask as large as a whole split
    if not len(bad_rows):
        return
    where = bad_rows if positions is None else np.sort(np.asarray(positions)[bad_rows])
    raise ContractError(f"encoder {encoder!r} produced NaN or infinite features for {len(where)} sample(s) "
                        f"(at {_first(where)}); {precision_hint(precision)}")


def check_features(features: Any, labels: Any, encoder: str, split: str, embed_dim: int | None = None) -> None:
    """A whole split's features: float32 (N, D), finite, one row per label, ``embed_dim`` wide when known."""
    x = features
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim != 2:
        desc = f"{type(x).__name__} {getattr(x, 'dtype', '')} {getattr(x, 'shape', '')}".strip()
        raise ContractError(f"features of encoder {encoder!r} on split {split!r} must be a float32 (N, D) array, "
                            f"got {desc}; {ENCODER_FIX}")
    if len(x) != len(labels):
        raise ContractError(f"encoder {encoder!r} returned {len(x)} feature rows for the {len(labels)} samples of "
                            f"split {split!r}; {ENCODER_FIX}")
    check_width(x.shape[1], embed_dim, encoder, split)
    check_finite(x, encoder)
    check_scale(f"encoder {encoder!r}: split {split!r} features", x)


# --- dataset splits ---------------------------------------------------------------------------------------------
def check_split_lengths(samples: Sequence[Any], labels: Any, dataset: str, split: str) -> None:
    """One label per sample."""
    if len(samples) != len(labels):
        raise ContractError(f"dataset {dataset!r} split {split!r} has {len(samples)} samples but {len(labels)} "
                            f"labels; {DATASET_FIX}: a Split needs exactly one label per sample")


def check_labels(labels: Any, num_classes: int, dataset: str, split: str) -> None:
    """Labels are a 1-D integer array of class indices ``0 .. num_classes - 1``."""
    y = np.asarray(labels)
    if y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise ContractError(f"dataset {dataset!r} split {split!r}: labels must be a 1-D integer array, got dtype "
                            f"{y.dtype} shape {y.shape}; {DATASET_FIX}")
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise ContractError(f"dataset {dataset!r} split {split!r}: labels must be class indices "
                            f"0..{num_classes - 1} (it has {num_classes} classes), got "
                            f"{sorted(set(y[bad].tolist()))[:5]} at rows {_first(np.flatnonzero(bad))}; "
                            f"{DATASET_FIX}: list every class in `classes` and map labels to their index")


def check_classes(dataset: Any, label: str) -> None:
    """A classification dataset does not list a single class (with one, every prediction is right: a score of
    1.0 that says nothing). Datasets of another declared ``kind`` (pairs, retrieval), and those without classes
    (what labels could they have?), are not checked here; check_labels refuses any label of a class-less one."""
    if getattr(dataset, "kind", None) not in (None, "classification"):
        return
    classes = getattr(dataset, "classes", None)
    if classes is not None and len(classes) == 1:
        raise ContractError(f"dataset {label!r} has {len(classes)} class(es) ({list(classes)[:3]}); a classification "
                            f"benchmark needs at least 2, or every score is a meaningless 100%; {DATASET_FIX}")


def check_split(split: Any, num_classes: int | None, dataset: str, name: str) -> None:
    """A split's samples and labels match in length and (when ``num_classes`` is given) labels are in range."""
    check_split_lengths(split.samples, split.labels, dataset, name)
    if num_classes is not None:
        check_labels(split.labels, num_classes, dataset, name)


# --- protocol output --------------------------------------------------------------------------------------------
def _check_label_array(value: Any, what: str, n_test: int, num_classes: int, protocol: str) -> None:
    y = np.asarray(value)
    if y.ndim != 1 or len(y) != n_test:
        raise ContractError(f"protocol {protocol!r}: {what} must be a 1-D array with one entry per test sample "
                            f"({n_test}), got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        raise ContractError(f"protocol {protocol!r}: {what} must be integer class indices, got dtype {y.dtype}; "
                            "return e.g. scores.argmax(1)")
    bad = (y < 0) | (y >= num_classes)
    if bad.any():
        raise ContractError(f"protocol {protocol!r}: {what} must be class indices 0..{num_classes - 1}, got "
                            f"{sorted(set(y[bad].tolist()))[:5]} at rows {_first(np.flatnonzero(bad))}")


def check_protocol_output(output: Any, n_test: int, num_classes: int, protocol_name: str) -> None:
    """What a protocol returned: a :class:`~benchmark.specs.ProtocolOutput` whose ``predictions``, when given,
    come with ``labels`` (required with predictions: the test labels they are scored against), both 1-D integer
    class indices in ``0 .. num_classes - 1`` with ``n_test`` entries; ``metrics`` and ``chosen`` are dicts.
    A protocol that scores itself returns neither predictions nor labels."""
    p = protocol_name
    if not isinstance(output, ProtocolOutput):
        raise ContractError(f"protocol {p!r} returned {type(output).__name__}, not ProtocolOutput")
    if not isinstance(output.metrics, dict) or not isinstance(output.chosen, dict):
        raise ContractError(f"protocol {p!r}: ProtocolOutput.metrics and .chosen must be dicts")
    if output.predictions is None:
        if output.labels is not None:
            raise ContractError(f"protocol {p!r} returned labels without predictions: give both or neither")
        return
    if output.labels is None:
        raise ContractError(f"protocol {p!r} returned predictions without labels: a ProtocolOutput with "
                            "predictions must also carry the test labels they are scored against "
                            "(ProtocolOutput(predictions, labels, ...))")
    _check_label_array(output.predictions, "predictions", n_test, num_classes, p)
    _check_label_array(output.labels, "labels", n_test, num_classes, p)


#: The message of :class:`~benchmark.specs.Split`'s own length check, which cannot name the split.
_SPLIT_LENGTHS = re.compile(r"^split has \d+ samples but \d+ labels")
#: The message of :class:`~benchmark.specs.Split`'s label check (:func:`~benchmark.checks.integer_labels`): labels that are no integers.
SPLIT_LABELS = re.compile(r"^split labels must be integer class indices")


def checked_split(dataset: Dataset, split: str, label: str) -> Split:
    """``dataset.split(split)``, checked (:func:`~benchmark.features.contracts.check_split`): one label per
    sample and labels in ``0 .. len(classes) - 1``. ContractError messages name the dataset ``label`` and split,
    also for :class:`~benchmark.specs.Split`'s own length check, which cannot."""
    try:
        data = dataset.split(split)
    except ValueError as exc:
        if not isinstance(exc, RepbenchError) and SPLIT_LABELS.match(str(exc)):
            raise ContractError(f"dataset {label!r} split {split!r}: {exc}; fix the dataset plugin") from exc
        if isinstance(exc, RepbenchError) or not _SPLIT_LENGTHS.match(str(exc)):
            raise
        raise ContractError(f"dataset {label!r} split {split!r}: {exc}; fix the dataset plugin: a Split needs "
                            "exactly one label per sample") from exc
    check_split(data, len(dataset.classes), label, split)
    return data
