"""``shift:A>B``: domain shift. Train (and val) from dataset A, test from dataset B, classes aligned by name, so
every protocol measures cross-domain transfer unchanged. A plain plugin module.

``A`` and ``B`` are any dataset names the catalog knows (built-in, plugin, or families such as
``imagefolder:<path>`` or ``corrupt:<name>``); their options go in the family's brackets with the prefixes
``source.`` and ``target.``: ``shift:digits>mnist5k[source.seed=1,target.test_fraction=0.5]``.

Classes are aligned by name, compared case- and whitespace-insensitively (``aliases=fresh:positive+rotten:negative``
maps names that differ). Both sides keep only the shared classes (``shift:r8>r52`` tests on the R52 documents of
the eight R8 topics); class ``i`` is the ``i``-th shared class in A's order. At least two shared classes are needed.

Images: every image dataset yields 8-bit PIL images (``digits`` scales its 0-16 values to 0-255 when it builds
them), so a pair differs only in size and colour mode. The target's test images are converted to the source's
mode and size (of A's first training image; bilinear, antialiased when shrinking), so every encoder sees one
format, as a model trained on A would be fed B in practice; ``size=N`` resizes both sides to N x N instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from benchmark import checks
from benchmark.datasets.base import InMemoryDataset, take
from benchmark.datasets.derived import Inner, MappedSamples, bind_inner, catalog_loader, composite_spec
from benchmark.errors import DataError, OptionError
from benchmark.hookspecs import hookimpl
from benchmark.specs import Dataset, DatasetSpec, Split

FAMILY = "shift:"
MIN_SHARED = 2
GRAY_MODES = ("L", "1", "I", "I;16", "F")


def normalise(name: Any) -> str:
    """A class name as compared across datasets: whitespace collapsed, case folded."""
    return " ".join(str(name).split()).casefold()


def parse_aliases(owner: str, aliases: Sequence[str]) -> dict[str, str]:
    """``["fresh:positive", ...]`` -> ``{"fresh": "positive"}`` (normalised); OptionError for a malformed pair."""
    out: dict[str, str] = {}
    for pair in aliases:
        old, sep, new = str(pair).partition(":")
        if not sep or not old.strip() or not new.strip():
            raise OptionError(f"{owner}: option aliases takes name:name pairs joined by '+' "
                              f"(e.g. aliases=fresh:positive+rotten:negative), got {pair!r}")
        out[normalise(old)] = normalise(new)
    return out


@dataclass(frozen=True)
class Alignment:
    """Shared classes (names as A spells them) and, per side, old label -> new label (-1: dropped)."""

    classes: list[str]
    source_map: np.ndarray
    target_map: np.ndarray
    dropped_source: list[str]
    dropped_target: list[str]


def _keys(owner: str, label: str, classes: Sequence[Any], aliases: Mapping[str, str]) -> list[str]:
    keys = [aliases.get(normalise(c), normalise(c)) for c in classes]
    seen: dict[str, Any] = {}
    for c, k in zip(classes, keys, strict=True):
        if k in seen:
            raise DataError(f"{owner}: classes {seen[k]!r} and {c!r} of {label} both align to {k!r}; change aliases")
        seen[k] = c
    return keys


def _preview(classes: Sequence[Any], shown: int = 6) -> str:
    head = ", ".join(str(c) for c in classes[:shown])
    return head + (f", ... ({len(classes)} in all)" if len(classes) > shown else "")


def align_classes(owner: str, source: tuple[str, Sequence[Any]], target: tuple[str, Sequence[Any]],
                  aliases: Mapping[str, str]) -> Alignment:
    """Align ``(label, classes)`` of the source and the target by normalised name (after ``aliases``).

    Raises DataError in one line, listing both sides' classes, when fewer than :data:`MIN_SHARED` are shared.
    """
    (a, a_classes), (b, b_classes) = source, target
    a_keys, b_keys = _keys(owner, a, a_classes, aliases), _keys(owner, b, b_classes, aliases)
    b_index = {k: j for j, k in enumerate(b_keys)}
    shared = [i for i, k in enumerate(a_keys) if k in b_index]
    if len(shared) < MIN_SHARED:
        names = f" ({', '.join(str(a_classes[i]) for i in shared)})" if shared else ""
        raise DataError(f"{owner}: {a} and {b} share {len(shared)} class name(s){names}, a shift needs at least "
                        f"{MIN_SHARED} (names compared ignoring case and spaces); {a} has {_preview(a_classes)}; "
                        f"{b} has {_preview(b_classes)}; map differing names with aliases=<name>:<name>+...")
    source_map = np.full(len(a_classes), -1, dtype=np.int64)
    target_map = np.full(len(b_classes), -1, dtype=np.int64)
    for new, i in enumerate(shared):
        source_map[i] = new
        target_map[b_index[a_keys[i]]] = new
    return Alignment([str(a_classes[i]) for i in shared], source_map, target_map,
                     [str(c) for c, m in zip(a_classes, source_map, strict=True) if m < 0],
                     [str(c) for c, m in zip(b_classes, target_map, strict=True) if m < 0])


def restrict(split: Split, mapping: np.ndarray) -> Split:
    """The samples whose class ``mapping`` keeps (>= 0), relabelled; lazy samples stay lazy."""
    keep = np.flatnonzero(mapping[split.labels] >= 0)
    picked = take(split, keep)
    return Split(picked.samples, mapping[picked.labels])


class ToFormat:
    """An image converted to ``mode`` and resized to ``size`` (w, h), bilinear: PIL's resize filters scale their
    support when shrinking, so a downscale is antialiased. A class, so shifted splits pickle."""

    def __init__(self, mode: str, size: tuple[int, int]) -> None:
        self.mode = mode
        self.size = (int(size[0]), int(size[1]))
        self.tag = f"format({mode},{self.size[0]}x{self.size[1]},bilinear)"

    def __call__(self, sample: Image.Image, position: int) -> Image.Image:
        image = sample
        if image.mode != self.mode:
            image = image.convert(self.mode)
        if image.size != self.size:
            image = image.resize(self.size, Image.Resampling.BILINEAR)
        return image


def _source_format(owner: str, train: Split) -> tuple[str, tuple[int, int]]:
    if not len(train):
        raise DataError(f"{owner}: the source's train split is empty")
    first = train.samples[0]
    if not isinstance(first, Image.Image):
        raise DataError(f"{owner}: the source's samples are {type(first).__name__}, not PIL images")
    return ("L" if first.mode in GRAY_MODES else "RGB"), first.size


def _formatted(owner: str, splits: dict[str, Split], size: int | None) -> tuple[dict[str, Split], dict[str, Any]]:
    """Splits with the test images in the train images' format (or every split at ``size`` x ``size``)."""
    mode, source_size = _source_format(owner, splits["train"])
    fmt = ToFormat(mode, source_size if size is None else (size, size))
    out = {}
    for name, split in splits.items():
        if name == "test" or size is not None:
            split = Split(MappedSamples(split.samples, fmt), split.labels)
        out[name] = split
    how = "test images converted to the source's" if size is None else "every image converted to"
    return out, {"mode": mode, "size": list(fmt.size), "resample": "bilinear", "applied": how + " mode and size"}


def load_bound(variant: str, inners: Mapping[str, Inner], size: int | None = None, aliases: Sequence[str] = (),
               **inner_options: Any) -> InMemoryDataset:
    """The dataset ``shift:<variant>`` for resolved source and target datasets (see the module docstring)."""
    owner = f"dataset '{FAMILY}{variant}'"
    labels = {role: inner.label(inner_options) for role, inner in inners.items()}
    source, target = inners["source"].load(inner_options), inners["target"].load(inner_options)
    if source.modality != target.modality:
        raise DataError(f"{owner}: the source {labels['source']} holds {source.modality} data but the target "
                        f"{labels['target']} holds {target.modality}; pair datasets of one modality")
    names = parse_aliases(owner, aliases)
    alignment = align_classes(owner, (labels["source"], source.classes), (labels["target"], target.classes), names)
    splits = {s: restrict(source.split(s), alignment.source_map) for s in source.splits if s != "test"}
    splits["test"] = restrict(target.split("test"), alignment.target_map)
    image_format = None
    if source.modality == "image":
        splits, image_format = _formatted(owner, splits, size)
    info = {
        "source": f"train from {labels['source']}, test from {labels['target']}",
        "source_dataset": _side(labels["source"], source), "target_dataset": _side(labels["target"], target),
        "shared_classes": alignment.classes, "dropped_source_classes": alignment.dropped_source,
        "dropped_target_classes": alignment.dropped_target, "aliases": names, "image_format": image_format,
    }
    order = tuple(s for s in source.splits if s != "test") + ("test",)
    return InMemoryDataset(f"{FAMILY}{variant}", source.modality, alignment.classes, lambda: splits, info, order)


def _side(label: str, dataset: Dataset) -> dict[str, Any]:
    return {"label": label, "fingerprint": dataset.fingerprint, "num_classes": len(dataset.classes),
            "info": dict(dataset.info)}


def bind(variant: str, catalog: Any) -> DatasetSpec:
    """The spec serving ``shift:<variant>``: both names resolved through ``catalog`` (UnknownNameError with "did
    you mean" for a typo), their modalities checked, their options declared under ``source.`` / ``target.``."""
    owner = f"dataset '{FAMILY}{variant}'"
    source_name, sep, target_name = variant.partition(">")
    if not sep:
        raise OptionError(f"{owner}: name a source and a target as {FAMILY}<source>><target>, e.g. "
                          f"{FAMILY}digits>mnist5k")
    source = bind_inner(catalog, owner, "source", source_name)
    target = bind_inner(catalog, owner, "target", target_name)
    if source.spec.modality != target.spec.modality:
        raise OptionError(f"{owner}: the source {source.name!r} is an {source.spec.modality} dataset but the target "
                          f"{target.name!r} is a {target.spec.modality} dataset; pair datasets of one modality")
    modality = source.spec.modality

    def validate_own(options: Mapping[str, Any]) -> None:
        check_own(owner, options)
        if modality != "image" and options.get("size") is not None:
            raise OptionError(f"{owner}: option size applies to image pairs only")

    return composite_spec(SPEC, modality, load_bound, [source, target], owner, validate_own)


def check_own(owner: str, options: Mapping[str, Any]) -> None:
    """OptionError for a bad ``size`` (None or an integer >= 1) or ``aliases`` (name:name pairs), when given."""
    checks.need_int(owner, "size", options.get("size"), 1, optional=True)
    aliases = options.get("aliases", [])
    if not isinstance(aliases, (list, tuple)):
        raise checks.bad_option(owner, "aliases", "name:name pairs joined by '+'", aliases)
    parse_aliases(owner, aliases)


load_shift = catalog_loader(FAMILY)


SPEC = DatasetSpec(
    FAMILY,
    "image",  # the bound spec says the pair's real modality
    load=load_shift,
    description="domain shift: train on dataset A, test on dataset B, classes aligned by name (B restricted to "
                "A's); options of A and B as source.<option> and target.<option>",
    defaults={"size": None, "aliases": []},
    validate=lambda options: check_own(f"dataset '{FAMILY}'", options),
    examples=("shift:digits>mnist5k", "shift:mnist5k>digits", "shift:r8>r52",
              "shift:sst2>rotten-tomatoes[aliases=fresh:positive+rotten:negative]"),
    bind=bind,
)


@hookimpl
def register_datasets() -> list[DatasetSpec]:
    return [SPEC]
