"""Task kinds and fields: what a dataset other than a classification one holds (:mod:`benchmark.datasets.pairs`)
and the role each of its fields is encoded in. Re-exported by :mod:`benchmark.specs`, where plugins import them
from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

#: What a dataset holds (:mod:`benchmark.datasets.pairs`): ``classification`` (samples with class labels: every
#: dataset before task kinds, still the default), ``scored-pairs`` (two texts and a graded similarity, STS),
#: ``labelled-pairs`` (two texts and a 0/1 label: duplicates, paraphrases) and ``retrieval`` (queries, a corpus,
#: graded relevance judgments and, for reranking, a candidate list per query). Datasets declare one; protocols
#: declare the kinds they accept, as they declare modalities.
KINDS: tuple[str, ...] = ("classification", "scored-pairs", "labelled-pairs", "retrieval")
#: The role a field is encoded in (:class:`~benchmark.specs.RoleAware`): a retrieval task's queries and
#: documents; None: no role.
ROLES: tuple[str, ...] = ("query", "document")


def check_kind(owner: str, kinds: Sequence[str]) -> None:
    """ValueError unless ``kinds`` is a non-empty list of :data:`KINDS` (what a spec declares)."""
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ValueError(f"{owner}: task kinds must be among {KINDS}, got {list(kinds)!r}")


@runtime_checkable
class FieldDataset(Protocol):
    """A dataset of a kind other than classification (:mod:`benchmark.datasets.pairs`): ``fields()`` maps
    each field to encode (``sentence1``, ``queries``, ``corpus``) to its :class:`Field`; ``fit_samples()``
    are the texts a :class:`~benchmark.specs.Fittable` encoder is fitted on (never gold scores or judgments);
    ``data`` is the kind's container (scored pairs, labelled pairs, retrieval) protocols score against."""

    @property
    def kind(self) -> str: ...

    @property
    def data(self) -> Any: ...

    def fields(self) -> Mapping[str, Field]: ...

    def fit_samples(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Field:
    """The samples of one field of a :class:`FieldDataset` and the role they are encoded in (None: no role)."""

    samples: Sequence[Any]
    role: str | None = None
