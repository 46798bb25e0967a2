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

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np

from benchmark.checks import integer_labels
from benchmark.options import check_spec_name, defaults_of, fill_defaults, is_family  # noqa: F401 (re-exported)
from benchmark.specs.fields import KINDS as KINDS  # re-exported: task kinds and fields
from benchmark.specs.fields import ROLES as ROLES
from benchmark.specs.fields import Field as Field
from benchmark.specs.fields import FieldDataset as FieldDataset
from benchmark.specs.fields import check_kind
from benchmark.specs.training import Backbone as Backbone  # re-exported: plugins import them from here
from benchmark.specs.training import Budget as Budget
from benchmark.specs.training import BuiltMethod as BuiltMethod
from benchmark.specs.training import Method as Method
from benchmark.specs.training import TrainDefaults as TrainDefaults

if TYPE_CHECKING:
    import torch

Modality = Literal["image", "text"]
MODALITIES: tuple[str, ...] = ("image", "text")
#: ``validate(options)`` of a spec: raises :class:`~benchmark.errors.OptionError` for values it cannot use.
Validator = Callable[[Mapping[str, Any]], None]


def _check_common(kind: str, name: str, modality: str | None = None) -> None:
    check_spec_name(kind, name)
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"{kind} {name!r}: modality must be one of {MODALITIES}, got {modality!r}")


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder users can name. ``load(**options)`` (plus ``variant=`` for families) returns an :class:`Encoder`."""

    name: str
    modality: Modality
    load: Callable[..., Encoder]
    description: str = ""
    defaults: Mapping[str, Any] = None  # type: ignore[assignment]  # None: from load's signature
    examples: Sequence[str] = ()
    validate: Validator | None = None
    #: ``count_layers(variant, options) -> int | None``: how many layers the encoder's ``layer`` option can
    #: select, told without loading weights (None: not known before loading); lets ``layers=all`` expand and
    #: ``layer=i`` be range-checked when the plan is made (:mod:`benchmark.encoders.layers`).
    count_layers: Callable[[str | None, Mapping[str, Any]], int | None] | None = None
    #: ``weights_id(variant, options) -> str | None``: content hash of the local weight file(s) it would load (None:
    #: none), told without building it; in a cell's digest: new weights behind one name rerun (storage.local_weights)
    weights_id: Callable[[str | None, Mapping[str, Any]], str | None] | None = None
    #: Families whose variant is a place rather than an identity (``run:<folder>``) set ``name_of(variant)``:
    #: the variant records name the encoder by, from its content (a run's method, backbone, data and digest),
    #: never from where it sits. Called when the plan is made; raising (a folder that is not a run) refuses the
    #: name before any work. ``load`` still receives the variant as typed.
    name_of: Callable[[str], str] | None = None
    #: Families set ``check_variant(variant)`` to refuse a variant that cannot work (a misspelled timm model)
    #: when the plan is made, before any work: it raises a RepbenchError (or ValueError) saying what to do.
    check_variant: Callable[[str], None] | None = None
    #: Families that can enumerate their variants offline set ``list_variants(pattern)`` -> variant names
    #: matching an fnmatch ``pattern`` (``timm/`` with timm.list_models), for ``repbench list encoders 'timm/*'``.
    list_variants: Callable[[str], Sequence[str]] | None = None
    #: Import names of the optional packages ``load`` needs (``repbench list`` shows whether they are installed).
    requires: Sequence[str] = ()

    def __post_init__(self) -> None:
        _check_common("encoder", self.name, self.modality)
        if not callable(self.load):
            raise TypeError(f"encoder {self.name!r}: load must be callable")
        fill_defaults(self, self.load)


@dataclass(frozen=True)
class DatasetSpec:
    """A labelled dataset. ``load(**options)`` (plus ``variant=`` for families) returns a :class:`Dataset`."""

    name: str
    modality: Modality
    load: Callable[..., Dataset]
    description: str = ""
    defaults: Mapping[str, Any] = None  # type: ignore[assignment]  # None: from load's signature
    examples: Sequence[str] = ()
    validate: Validator | None = None
    #: Families whose variant names other datasets (``shift:A>B``, ``corrupt:D``) set ``bind(variant, catalog)``:
    #: it resolves the inner names through the catalog (unknown ones raise UnknownNameError, with "did you
    #: mean", before any work) and returns the DatasetSpec serving this variant, under the family's name, with
    #: its real modality, options and load. The catalog calls it in ``resolve``.
    bind: Callable[[str, Any], DatasetSpec] | None = None
    #: A bound family spec's inner datasets (``shift:A>B``: A and B), whose plugins config digests name too.
    inner: tuple[DatasetSpec, ...] = ()
    #: As for encoders: ``check_variant(variant)`` refuses a variant that cannot work (a path that does not
    #: exist) when the plan is made, before any work.
    check_variant: Callable[[str], None] | None = None
    #: Import names of the optional packages ``load`` needs (``repbench list`` shows whether they are installed).
    requires: Sequence[str] = ()
    #: What the dataset holds (one of :data:`KINDS`); only protocols that accept it run on it.
    kind: str = "classification"

    def __post_init__(self) -> None:
        _check_common("dataset", self.name, self.modality)
        check_kind(f"dataset {self.name!r}", (self.kind,))
        if not callable(self.load):
            raise TypeError(f"dataset {self.name!r}: load must be callable")
        fill_defaults(self, self.load)


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
    defaults: Mapping[str, Any] = None  # type: ignore[assignment]  # None: from evaluate's signature
    modalities: tuple[str, ...] = MODALITIES
    validate: Validator | None = None
    #: The dataset kinds (:data:`KINDS`) it evaluates; the plan pairs it with datasets of these kinds only.
    kinds: tuple[str, ...] = ("classification",)

    def __post_init__(self) -> None:
        _check_common("protocol", self.name)
        check_kind(f"protocol {self.name!r}", self.kinds)
        if is_family(self.name):
            raise ValueError(f"protocol {self.name!r}: protocol names cannot be families")
        if not callable(self.evaluate):
            raise TypeError(f"protocol {self.name!r}: evaluate must be callable")
        fill_defaults(self, self.evaluate)


@dataclass(frozen=True)
class MethodSpec:
    """A pretraining method: ``build(backbone, **options) -> Method``. It never owns the training loop.

    ``backbone`` is a :class:`Backbone`: the resolved encoder the user named (spec, variant, every option) and
    the loaded, trainable module. ``build`` returns a :class:`Method`: the views, the objective, optional
    momentum pairs and step hook, and the method's :class:`TrainDefaults`. The core's loop
    (:mod:`benchmark.methods.trainer`) runs it under a budget, with the optimiser, schedule, AMP, checkpoints,
    resume and DDP; the trained backbone comes back as an encoder every command accepts. ``uses_labels``: only a
    supervised reference may read labels, and its records say so.
    """

    name: str
    build: Callable[..., Method]
    modality: Modality = "image"
    description: str = ""
    defaults: Mapping[str, Any] = None  # type: ignore[assignment]  # None: from build's signature
    validate: Validator | None = None
    uses_labels: bool = False

    def __post_init__(self) -> None:
        _check_common("method", self.name, self.modality)
        if is_family(self.name):
            raise ValueError(f"method {self.name!r}: method names cannot be families")
        if not callable(self.build):
            raise TypeError(f"method {self.name!r}: build must be callable")
        fill_defaults(self, self.build)


@dataclass
class Split:
    """Raw samples (PIL images or strings) and integer labels of one split."""

    samples: Sequence[Any]
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.labels = np.asarray(integer_labels(self.labels), dtype=np.int64)
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

    @property
    def modality(self) -> str: ...

    @property
    def classes(self) -> Sequence[str]: ...

    @property
    def splits(self) -> tuple[str, ...]: ...

    @property
    def info(self) -> Mapping[str, Any]: ...

    @property
    def fingerprint(self) -> str: ...

    def split(self, name: str) -> Split: ...


@runtime_checkable
class Encoder(Protocol):
    """What ``EncoderSpec.load`` returns.

    ``preprocess(samples)`` turns a list of raw samples into one model-ready batch (a tensor or a dict of
    tensors); ``encode(batch)`` returns float features of shape (B, embed_dim). ``info`` goes into the record
    (weights used, parameter count, ...). ``fingerprint`` covers weights and preprocessing, for the cache key.
    ``embed_dim`` may be None until the first batch (raw pixels) or ``fit`` (TF-IDF); once known, every
    batch must have exactly that width (the harness checks).
    Optional capabilities, each a small Protocol below: :class:`Fittable`, :class:`Sortable`,
    :class:`TokenCounting`, :class:`Trainable`. Encoders that are ``torch.nn.Module`` are moved to the
    evaluation device by the harness.
    """

    @property
    def modality(self) -> str: ...

    @property
    def embed_dim(self) -> int | None: ...

    @property
    def info(self) -> Mapping[str, Any]: ...

    @property
    def fingerprint(self) -> str: ...

    def preprocess(self, samples: Sequence[Any]) -> Any: ...

    def encode(self, batch: Any) -> Any: ...


# --- optional encoder capabilities: small Protocols the harness checks with isinstance() ----------------------
@runtime_checkable
class Fittable(Protocol):
    """An encoder fitted on data before use (TF-IDF's vocabulary, pixels' colour mode): the harness calls
    ``fit(train samples)`` once per (encoder, dataset) pair, on the train split only, before any extraction."""

    def fit(self, samples: Sequence[Any]) -> Any: ...


@runtime_checkable
class Sortable(Protocol):
    """An encoder whose batches are cheaper when similar samples go together: the harness batches in
    ``sort_key`` order (text length, to cut padding) and restores the input order of the features."""

    def sort_key(self, sample: Any) -> int: ...


@runtime_checkable
class TokenCounting(Protocol):
    """A text encoder that counts the real (non-padding) tokens of a preprocessed batch, for tokens/s."""

    def count_tokens(self, batch: Any) -> int: ...


@runtime_checkable
class SharedSplits(Protocol):
    """A derived dataset some of whose splits are exactly another dataset's (``corrupt:D`` keeps D's train
    split): ``split_fingerprint(split)`` is the fingerprint that split's features are cached under, that other
    dataset's for a shared split and ``fingerprint`` otherwise, so the features are extracted once for both."""

    def split_fingerprint(self, split: str) -> str: ...


@runtime_checkable
class RoleAware(Protocol):
    """An asymmetric encoder that embeds a text differently as a query and as a document (E5's "query: " /
    "passage: " prefixes, instruction prompts, two towers). ``for_role(role)`` (``role`` in :data:`ROLES`)
    returns the encoder to use for that role: same weights, its own ``fingerprint`` (covering the prompt) and
    ``info`` (saying the prompt). The harness calls it for every field of a kind whose role is set and keys the
    feature cache on the role; encoders without the capability are symmetric and get one cache entry per text
    set whatever the role."""

    def for_role(self, role: str) -> Encoder: ...


@runtime_checkable
class Trainable(Protocol):
    """An encoder that can be trained: a ``torch.nn.Module`` whose ``encode`` is differentiable (no
    ``no_grad``, no detach), so fine-tuning and pretraining reach its ``parameters()``."""

    def parameters(self, recurse: bool = True) -> Any: ...

    def train(self, mode: bool = True) -> Any: ...

    def encode(self, batch: Any) -> torch.Tensor: ...


@runtime_checkable
class ExampleBatch(Protocol):
    """An encoder that builds a synthetic, model-ready batch itself, for throughput measurement
    (``repbench throughput``): ``example_batch(batch_size, seq_len=..., device=...)`` returns what ``encode``
    accepts (a tensor or a dict of tensors) with ``batch_size`` samples, already on ``device``; random values
    of the real shape and dtype (images: the preprocessing's input size; text: ``seq_len`` token ids, default
    the encoder's choice, with a full attention mask). ``seq_len`` is ignored by encoders without sequences."""

    def example_batch(self, batch_size: int, *, seq_len: int | None = None, device: str = "cpu") -> Any: ...


@dataclass
class ProtocolOutput:
    """What a protocol returns.

    ``predictions``: test-set predicted labels, and then ``labels`` is required too: the test labels they are
    scored against, in the same order (the harness computes top-1 and its bootstrap 95% CI from both). A protocol
    that scores itself (few-shot: a mean over draws) returns neither and puts ``top1`` in ``metrics``. ``metrics``: any further metrics (top-5, per-k accuracies, a mean and std over seeds).
    ``chosen``: hyperparameters the protocol selected itself (a C, an epoch), recorded beside the given ones.
    """

    predictions: np.ndarray | None = None
    labels: np.ndarray | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    chosen: dict[str, Any] = field(default_factory=dict)
    #: What ``repbench eval --save-predictions`` writes beside the record, never the record itself:
    #: ``{"pairs": (ids, scores, gold)}`` (sts, pairclass) or ``{"run": (query ids, doc ids, (Q, k) doc index,
    #: (Q, k) scores)}`` (retrieval over qrels, rerank). :mod:`benchmark.results.predictions` writes them.
    saved: dict[str, Any] = field(default_factory=dict)


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

    def embeddings(self, field: str) -> np.ndarray:
        """float32 (N, D) features of one field of a :class:`FieldDataset` (``queries``, ``corpus``,
        ``sentence1``), encoded once in the field's role and cached."""
        ...


#: How a suite's leaderboard ranks its encoders (see :mod:`benchmark.leaderboards.aggregate`).
AGGREGATIONS: tuple[str, ...] = ("borda", "mean", "mean_rank", "normalized")


@dataclass(frozen=True)
class SuiteSpec:
    """A named, versioned benchmark: a fixed set of (dataset, protocol) cells and how they are ranked.

    ``name`` ends in ``-v<N>`` (``offline-vision-v1``): a suite never changes once published; a new cell set is a
    new version. ``datasets`` and ``protocols`` are spec strings with their options pinned
    (``"r8[max_chars=1000]"``, ``"knn"``); the suite's cells are every dataset with every protocol the
    dataset's modality allows. ``aggregation`` (one of :data:`AGGREGATIONS`) orders its leaderboard; ``baseline``
    names an encoder label whose scores are the floor of the normalised score (None: chance, 1/classes).
    Suites take no options (``defaults`` is empty).
    """

    name: str
    datasets: tuple[str, ...]
    protocols: tuple[str, ...]
    aggregation: str = "borda"
    baseline: str | None = None
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    validate: Validator | None = None

    def __post_init__(self) -> None:
        _check_common("suite", self.name)
        if not re.fullmatch(r"[a-z0-9][a-z0-9._/-]*-v[0-9]+", self.name):
            raise ValueError(f"suite name {self.name!r} must be lowercase and end in -v<N> (e.g. my-suite-v1)")
        for kind, items in (("datasets", self.datasets), ("protocols", self.protocols)):
            if isinstance(items, str) or not items or not all(isinstance(i, str) and i for i in items):
                raise ValueError(f"suite {self.name!r}: {kind} must be a non-empty tuple of spec strings")
            object.__setattr__(self, kind, tuple(items))
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"suite {self.name!r}: aggregation must be one of {AGGREGATIONS}, "
                             f"got {self.aggregation!r}")
        if self.defaults:
            raise ValueError(f"suite {self.name!r}: suites take no options; pin them in the dataset and "
                             "protocol strings")

    @property
    def version(self) -> int:
        """The ``N`` of the name's ``-v<N>``."""
        return int(self.name.rsplit("-v", 1)[1])

    def cells(self) -> list[tuple[str, str]]:
        """Every (dataset, protocol) spec-string pair, before the modality filter the plan applies."""
        return [(d, p) for d in self.datasets for p in self.protocols]
