"""``corrupt:D[kind=...,severity=1..5,seed=0]``: dataset D with its test split corrupted, seeded and deterministic;
train (and val) untouched. A plain plugin module.

Kinds for images: gaussian_noise, gaussian_blur, contrast, jpeg, pixelate (ImageNet-C's parameters, see
:mod:`benchmark.datasets.corruptions`); for texts: char_typo, word_dropout, case_noise. ``kind`` and
``severity`` have no default, so every label names them (``corrupt:digits[kind=jpeg,severity=3]``) and
:mod:`benchmark.leaderboards.robustness` can read them back. D's own options go in the same brackets with the
prefix ``base.``: ``corrupt:r8[kind=char_typo,severity=2,base.max_chars=500]``. The corruption of a test sample
is drawn from (seed, kind, its position in the test split), so it does not depend on batching, workers or order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark import checks
from benchmark.datasets.base import InMemoryDataset
from benchmark.datasets.corruptions import CORRUPTION_KINDS, PARAMETERS, SEVERITIES, Corruption
from benchmark.datasets.derived import Inner, MappedSamples, bind_inner, catalog_loader, composite_spec
from benchmark.errors import OptionError
from benchmark.hookspecs import hookimpl
from benchmark.specs import DatasetSpec, Split

FAMILY = "corrupt:"


def check_kind(owner: str, modality: str, kind: Any) -> None:
    """OptionError in one line listing the valid kinds when ``kind`` is missing or unknown for ``modality``."""
    valid = ", ".join(CORRUPTION_KINDS.get(modality, {}))
    if kind is None:
        raise OptionError(f"{owner}: option kind is required; kinds for {modality} datasets: {valid}")
    if kind not in CORRUPTION_KINDS.get(modality, {}):
        raise OptionError(f"{owner}: unknown corruption kind {kind!r} for {modality} datasets; valid kinds: {valid}")


def check_severity(owner: str, severity: Any) -> None:
    if severity is None:
        raise OptionError(f"{owner}: option severity is required: one of {', '.join(map(str, SEVERITIES))}")
    checks.need_int(owner, "severity", severity, SEVERITIES[0], SEVERITIES[-1])


def check_given(owner: str, options: Mapping[str, Any]) -> None:
    """The checks possible before the base's modality is known, on the options given: ``kind`` one of any
    modality's kinds, ``severity`` 1-5, ``seed`` an integer >= 0 (the bound spec also requires kind and
    severity)."""
    kind = options.get("kind")
    if kind is not None and not any(kind in kinds for kinds in CORRUPTION_KINDS.values()):
        valid = "; ".join(f"{modality}: {', '.join(kinds)}" for modality, kinds in CORRUPTION_KINDS.items())
        raise OptionError(f"{owner}: unknown corruption kind {kind!r}; valid kinds: {valid}")
    if options.get("severity") is not None:
        check_severity(owner, options["severity"])
    checks.need_int(owner, "seed", options.get("seed", 0), 0)


def load_bound(variant: str, inners: Mapping[str, Inner], kind: str | None = None, severity: int | None = None,
               seed: int = 0, **inner_options: Any) -> InMemoryDataset:
    """The dataset ``corrupt:<variant>`` for a resolved base dataset (see the module docstring)."""
    owner = f"dataset '{FAMILY}{variant}'"
    inner = inners["base"]
    base = inner.load(inner_options)
    check_kind(owner, base.modality, kind)
    check_severity(owner, severity)
    checks.need_int(owner, "seed", seed, 0)
    assert kind is not None and severity is not None  # checked above
    corruption = Corruption(base.modality, kind, severity, seed)
    splits = {s: base.split(s) for s in base.splits}
    test = splits["test"]
    splits["test"] = Split(MappedSamples(test.samples, corruption), test.labels)
    what, values = PARAMETERS[kind]
    info = {
        "source": f"{inner.label(inner_options)} with its test split corrupted ({kind}, severity {severity})",
        "base_dataset": {"label": inner.label(inner_options), "fingerprint": base.fingerprint,
                         "info": dict(base.info)},
        "corruption": {"kind": kind, "severity": severity, "seed": seed, "parameter": what,
                       "value": values[severity - 1], "applies_to": "test"},
    }
    return CorruptedDataset(f"{FAMILY}{variant}", base.modality, base.classes, lambda: splits, info, base.splits,
                            base_fingerprint=base.fingerprint)


class CorruptedDataset(InMemoryDataset):
    """The corrupted dataset: its train (and val) split *is* the base's, so their features are cached under the
    base's fingerprint (:class:`~benchmark.specs.SharedSplits`) and extracted once for the base and for every
    kind and severity; the test split's under the corrupted dataset's own."""

    def __init__(self, *args: Any, base_fingerprint: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.base_fingerprint = base_fingerprint

    def split_fingerprint(self, split: str) -> str:
        return self.fingerprint if split == "test" else self.base_fingerprint


def bind(variant: str, catalog: Any) -> DatasetSpec:
    """The spec serving ``corrupt:<variant>``: the base resolved through ``catalog`` (UnknownNameError with "did
    you mean" for a typo), ``kind`` checked against its modality before any data loads, its options declared
    under ``base.``."""
    owner = f"dataset '{FAMILY}{variant}'"
    inner = bind_inner(catalog, owner, "base", variant)
    modality = inner.spec.modality

    def validate_own(options: Mapping[str, Any]) -> None:
        check_kind(owner, modality, options.get("kind"))
        check_severity(owner, options.get("severity"))
        checks.need_int(owner, "seed", options.get("seed", 0), 0)

    return composite_spec(SPEC, modality, load_bound, [inner], owner, validate_own)


load_corrupt = catalog_loader(FAMILY)


SPEC = DatasetSpec(
    FAMILY,
    "image",  # the bound spec says the base's real modality
    load=load_corrupt,
    description="a dataset with its test split corrupted (seeded): images gaussian_noise, gaussian_blur, contrast, "
                "jpeg, pixelate (ImageNet-C parameters); texts char_typo, word_dropout, case_noise; severity 1-5; "
                "the base's options as base.<option>",
    defaults={"kind": None, "severity": None, "seed": 0},
    validate=lambda options: check_given(f"dataset '{FAMILY}'", options),
    examples=("corrupt:digits[kind=gaussian_noise,severity=3]", "corrupt:mnist5k[kind=pixelate,severity=5,seed=1]",
              "corrupt:r8[kind=char_typo,severity=2]"),
    bind=bind,
)


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return [SPEC]
