"""The frozen spec dataclasses plugins register, and the Encoder / Dataset protocols they build.

A *spec* is cheap to create: it holds a name and a lazy ``load``. Nothing heavy (weights, data) is touched until
the harness calls ``load``. A spec whose name ends with ``/`` or ``:`` is a *family*: it accepts any name that
starts with it (``timm/`` serves ``timm/resnet18``; ``imagefolder:`` serves ``imagefolder:/data/pets``) and its
``load`` receives the rest of the name as ``variant``.

Options are ``key=value`` pairs typed by users (``timm/resnet18[pretrained=false,img_size=64]``). Every spec declares
its options with their defaults in ``defaults``; the harness rejects unknown keys, coerces values to the default's
type and records the full resolved set, so a record always states every hyperparameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Modality = Literal["image", "text"]
MODALITIES: tuple[str, ...] = ("image", "text")


def _check_common(kind: str, name: str, modality: str | None = None) -> None:
    if not isinstance(name, str) or not name or name != name.strip() or any(c in name for c in "[],= "):
        raise ValueError(f"{kind} name {name!r} is malformed: use a non-empty string without spaces, ',', '=' or brackets")
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"{kind} {name!r}: modality must be one of {MODALITIES}, got {modality!r}")


def is_family(name: str) -> bool:
    """True for names like ``timm/`` or ``imagefolder:`` that serve every name starting with them."""
    return name.endswith(("/", ":"))


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder users can name. ``load(**options)`` (plus ``variant=`` for families) returns an :class:`Encoder`."""

    name: str
    modality: Modality
    load: Callable[..., Encoder]
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    examples: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_common("encoder", self.name, self.modality)
        if not callable(self.load):
            raise TypeError(f"encoder {self.name!r}: load must be callable")


@dataclass(frozen=True)
class DatasetSpec:
    """A labelled dataset. ``load(**options)`` (plus ``variant=`` for families) returns a :class:`Dataset`."""

    name: str
    modality: Modality
    load: Callable[..., Dataset]
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    examples: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_common("dataset", self.name, self.modality)
        if not callable(self.load):
            raise TypeError(f"dataset {self.name!r}: load must be callable")


@dataclass(frozen=True)
class ProtocolSpec:
    """A standardized evaluation.

    ``evaluate(task, **options) -> ProtocolOutput``. ``task`` is an :class:`EvalTask`: a protocol on frozen
    features calls ``task.features("train")``; a protocol that trains the encoder (fine-tuning) calls
    ``task.load_encoder()`` and ``task.dataset.split(...)``. ``options`` are ``defaults`` overridden by the user.
    """

    name: str
    evaluate: Callable[..., ProtocolOutput]
    primary_metric: str = "top1"
    higher_is_better: bool = True
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    modalities: tuple[str, ...] = MODALITIES

    def __post_init__(self) -> None:
        _check_common("protocol", self.name)
        if is_family(self.name):
            raise ValueError(f"protocol {self.name!r}: protocol names cannot be families")
        if not callable(self.evaluate):
            raise TypeError(f"protocol {self.name!r}: evaluate must be callable")


@dataclass(frozen=True)
class MethodSpec:
    """A pretraining method.

    ``pretrain(backbone, data, *, budget, seed, workdir, **options) -> EncoderSpec``: ``backbone`` is an
    :class:`EncoderSpec` to start from, ``data`` an unlabeled :class:`Split` (labels are ignored), ``budget`` a
    :class:`Budget`. The returned spec loads the trained encoder, so it flows into the same evaluation path.
    """

    name: str
    pretrain: Callable[..., EncoderSpec]
    modality: Modality = "image"
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_common("method", self.name, self.modality)
        if is_family(self.name):
            raise ValueError(f"method {self.name!r}: method names cannot be families")
        if not callable(self.pretrain):
            raise TypeError(f"method {self.name!r}: pretrain must be callable")


@dataclass(frozen=True)
class Budget:
    """A fixed training budget; whichever limit is reached first ends training."""

    epochs: int | None = None
    steps: int | None = None
    seconds: float | None = None


@dataclass
class Split:
    """Raw samples (PIL images or strings) and integer labels of one split."""

    samples: Sequence[Any]
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.samples) != len(self.labels):
            raise ValueError(f"split has {len(self.samples)} samples but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


@runtime_checkable
class Dataset(Protocol):
    """What ``DatasetSpec.load`` returns.

    ``classes``: class names, label ``i`` is ``classes[i]``. ``splits``: the fixed splits it has, always
    ``"train"`` and ``"test"``, optionally ``"val"``. ``info``: what a record must say about the data (source,
    split sizes, split seed). ``fingerprint``: a string that changes whenever the samples could change (used in
    the feature-cache key).
    """

    modality: str
    classes: Sequence[str]
    splits: tuple[str, ...]
    info: Mapping[str, Any]
    fingerprint: str

    def split(self, name: str) -> Split: ...


@runtime_checkable
class Encoder(Protocol):
    """What ``EncoderSpec.load`` returns.

    ``preprocess(samples)`` turns a list of raw samples into one model-ready batch (a tensor or a dict of
    tensors); ``encode(batch)`` returns float features of shape (B, embed_dim). ``info`` goes into the record
    (weights used, parameter count, ...). ``fingerprint`` covers weights and preprocessing, for the cache key.
    Encoders that must be fitted (TF-IDF) also define ``fit(samples)``, called once on the train split.
    Optional: ``sort_key(sample) -> int`` (the harness batches in that order, e.g. by text length, to cut padding,
    and restores the input order) and ``count_tokens(batch) -> int`` (real tokens in a preprocessed batch, so
    throughput can report tokens/s beside samples/s).
    Encoders that are ``torch.nn.Module`` are moved to the evaluation device by the harness.
    """

    modality: str
    embed_dim: int
    info: Mapping[str, Any]
    fingerprint: str

    def preprocess(self, samples: Sequence[Any]) -> Any: ...

    def encode(self, batch: Any) -> Any: ...


@dataclass
class ProtocolOutput:
    """What a protocol returns.

    ``predictions``: test-set predicted labels (the harness computes top-1 and its bootstrap 95% CI from them and
    ``labels``). ``metrics``: any further metrics (top-5, per-k accuracies, a mean and std over seeds).
    ``chosen``: hyperparameters the protocol selected itself (a C, an epoch), recorded beside the given ones.
    """

    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)


class EvalTask(Protocol):
    """The harness's handle that a protocol evaluates. Features are extracted once and cached."""

    dataset: Dataset
    encoder_name: str
    seed: int
    device: str
    num_classes: int

    def features(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(features float32 (N, D), labels int64 (N,)) of a split of the dataset."""
        ...

    def has_split(self, split: str) -> bool:
        """Whether the dataset has this split (``val`` is optional; protocols carve one from train otherwise)."""
        ...

    def load_encoder(self) -> Encoder:
        """The encoder itself, on ``device``, for protocols that train it (fine-tuning)."""
        ...
