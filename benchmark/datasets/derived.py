"""Building blocks for dataset families made of other datasets (``shift:A>B``, ``corrupt:D``).

A family over other datasets names them inside its variant; :func:`bind_inner` resolves each name through the
catalog (so plugin datasets work, and a typo gets "did you mean"), and :func:`composite_spec` builds the
:class:`~benchmark.specs.DatasetSpec` that serves the variant: the family's own options plus every inner
dataset's options under a role prefix (``source.seed=1``, ``base.max_chars=500``), all declared, coerced,
validated and recorded like any other option. Prefixed options rather than brackets inside the variant
(``shift:digits[seed=1]>mnist5k``) because the spec-string syntax allows one option bracket, at the end, and the
comma-separated lists of the command line split on commas outside brackets.

:class:`MappedSamples` is the lazy, picklable sequence both families put in their splits: item ``i`` is a
transform of item ``index[i]`` of a base sequence, computed when indexed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, overload

import numpy as np

from benchmark.datasets.base import sample_digest
from benchmark.errors import OptionError, RepbenchError, UnknownNameError
from benchmark.options import option_hints
from benchmark.specs import Dataset, DatasetSpec, defaults_of


class SampleTransform(Protocol):
    """A picklable per-sample transform: ``transform(sample, position)`` with ``position`` the sample's index in
    the base sequence (seeded transforms draw from it, so a sample's result does not depend on access order);
    ``tag`` names the transform and every parameter, for digests."""

    tag: str

    def __call__(self, sample: Any, position: int) -> Any: ...


class MappedSamples(Sequence[Any]):
    """Item ``i`` is ``transform(base[index[i]], index[i])``, computed on access (nothing is held decoded).

    Slicing and :meth:`take` give views over the same base; :meth:`digest` covers the base's content (its
    :func:`~benchmark.datasets.base.sample_digest`), the transform's ``tag`` and the index, without transforming.
    """

    def __init__(self, base: Sequence[Any], transform: SampleTransform, index: np.ndarray | None = None,
                 base_digest: str | None = None) -> None:
        self._base = base
        self._transform = transform
        self._index = np.arange(len(base), dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
        self._base_digest = base_digest

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> MappedSamples: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"sample index {i} out of range for {len(self)} samples")
        position = int(self._index[i])
        return self._transform(self._base[position], position)

    def take(self, indices: Sequence[int] | np.ndarray) -> MappedSamples:
        """A view of the items at ``indices`` (positions in this sequence)."""
        picked = self._index[np.asarray(indices, dtype=np.int64)]
        return MappedSamples(self._base, self._transform, picked, self._base_digest)

    def digest(self) -> str:
        if self._base_digest is None:  # computed once: the base never changes
            self._base_digest = sample_digest(self._base)
        h = hashlib.sha256(f"{self._base_digest}\0{self._transform.tag}\0".encode())
        h.update(self._index.tobytes())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Inner:
    """A dataset named inside a family's variant: its ``role`` (the option prefix), the name as typed, the spec
    serving it (already bound when it is itself a family over other datasets) and its family variant."""

    role: str
    name: str
    spec: DatasetSpec
    variant: str | None

    @property
    def prefix(self) -> str:
        return f"{self.role}."

    def prefixed_defaults(self) -> dict[str, Any]:
        return {self.prefix + k: v for k, v in self.spec.defaults.items()}

    def prefixed_hints(self) -> dict[str, object]:
        hints = option_hints(self.spec.load)
        return {self.prefix + k: v for k, v in hints.items() if k in self.spec.defaults}

    def options_from(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """This dataset's own options (defaults filled) from a family's prefixed ones."""
        given = {k[len(self.prefix):]: v for k, v in options.items() if k.startswith(self.prefix)}
        return {**self.spec.defaults, **given}

    def load(self, options: Mapping[str, Any]) -> Dataset:
        kwargs = self.options_from(options)
        if self.variant is not None:
            kwargs["variant"] = self.variant
        return self.spec.load(**kwargs)

    def label(self, options: Mapping[str, Any]) -> str:
        """The name plus its non-default options, exactly as the catalog labels it when used on its own."""
        from benchmark.catalog import Resolved  # the catalog imports the plugins, which import this module

        return Resolved(self.spec, self.name, self.options_from(options), self.variant).label


def bind_inner(catalog: Any, owner: str, role: str, name: str) -> Inner:
    """Resolve the dataset ``name`` named inside a family's variant through ``catalog``. ``owner`` names the
    family dataset in errors. Raises UnknownNameError (with the catalog's "did you mean") or OptionError."""
    name = name.strip()
    if not name:
        raise OptionError(f"{owner}: the {role} dataset name is empty")
    if "[" in name or "]" in name:
        raise OptionError(f"{owner}: give the {role} dataset's options in the family's brackets with the prefix "
                          f"'{role}.', e.g. [{role}.seed=1]")
    try:
        spec, variant = catalog.get("datasets", name)
    except UnknownNameError as exc:
        raise UnknownNameError(f"{owner}: {role} dataset: {exc}") from None
    if variant is not None and spec.bind is not None:
        spec = spec.bind(variant, catalog)
    return Inner(role, name, spec, variant)


class BoundLoad:
    """The ``load`` of a bound family spec: ``fn(variant, inners, **options)`` with every option filled in
    (own and prefixed). ``__annotations__`` carries the options' types, so the catalog coerces prefixed options
    by the inner loaders' annotations."""

    def __init__(self, fn: Callable[..., Dataset], inners: Sequence[Inner], defaults: Mapping[str, Any],
                 hints: Mapping[str, object]) -> None:
        self.fn = fn
        self.inners = {i.role: i for i in inners}
        self.defaults = dict(defaults)
        self.__annotations__ = dict(hints)

    def __call__(self, variant: str, **options: Any) -> Dataset:
        return self.fn(variant, self.inners, **{**self.defaults, **options})


def composite_spec(family: DatasetSpec, modality: str, fn: Callable[..., Dataset], inners: Sequence[Inner],
                   owner: str, validate_own: Callable[[Mapping[str, Any]], None] | None = None) -> DatasetSpec:
    """The spec serving one variant of ``family``: ``fn``'s options (read from its signature, after ``variant``
    and ``inners``) plus each inner dataset's, prefixed; validation runs ``validate_own`` on the own options and
    each inner spec's validator on its options, errors naming ``owner`` and the prefix."""
    own = defaults_of(fn)
    defaults = {**own}
    hints = {k: v for k, v in option_hints(fn).items() if k in own}
    for inner in inners:
        defaults.update(inner.prefixed_defaults())
        hints.update(inner.prefixed_hints())

    def validate(options: Mapping[str, Any]) -> None:
        if validate_own is not None:
            validate_own({k: v for k, v in options.items() if k in own})
        for inner in inners:
            if inner.spec.validate is None:
                continue
            try:
                inner.spec.validate(inner.options_from(options))
            except (RepbenchError, ValueError, TypeError) as exc:
                raise OptionError(f"{owner}, options {inner.prefix}*: {exc}") from exc

    return DatasetSpec(family.name, modality, load=BoundLoad(fn, inners, defaults, hints),  # type: ignore[arg-type]
                       description=family.description, defaults=defaults, examples=family.examples,
                       validate=validate, inner=tuple(i.spec for i in inners))


def catalog_loader(family: str) -> Callable[..., Any]:
    """The ``load`` of a family spec over other datasets: ``<family><variant>`` resolved through the catalog of
    the installed plugins and built-ins (the catalog's ``resolve`` binds the variant itself, so this serves only
    direct calls of the registered spec)."""

    def load(variant: str, **options: Any) -> Any:
        from benchmark.catalog import Catalog

        return Catalog.load().resolve("datasets", f"{family}{variant}").load(**options)

    load.__name__ = f"load_{family.rstrip(':')}"
    return load
