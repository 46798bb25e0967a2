"""Probes at every depth: the ``layer`` encoder option and the ``layers=all`` expansion.

An encoder spec that declares a ``layer`` option (``int | None``, default None) serves an intermediate
representation: ``layer=i`` is its i-th of ``n`` layers, negative indices count from the end, and ``layer=-1`` (or
``n-1``) is the final representation, the very features the encoder gives without the option (same fingerprint,
so the same feature-cache entry). Every other layer has a fingerprint of its own. The encoder's ``info`` carries
:func:`layer_block`: the index, the number of layers and the relative depth ``i / (n-1)``.

A spec that can tell its number of layers before loading any weights sets ``EncoderSpec.count_layers``; then
:func:`expand_layers` (called by the plan) turns ``layers=all`` (or ``layer=all``, or a list ``layers=0+2+-1``)
into one encoder per depth, and checks an explicit ``layer=i`` against the range before anything loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from benchmark.errors import OptionError
from benchmark.options import Requested, parse

if TYPE_CHECKING:
    from benchmark.catalog import Catalog

#: The value of ``layer`` / ``layers`` that means one encoder per depth.
ALL = "all"


def check_layer(owner: str, layer: int, count: int) -> int:
    """``layer`` as an index in ``0..count-1`` (negative ones count from the end); OptionError naming ``owner``
    (``encoder 'timm/resnet18'``), the index given and the valid range otherwise."""
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise OptionError(f"{owner}: layer must be an integer, got {layer!r}")
    if not -count <= layer < count:
        raise OptionError(f"{owner}: layer {layer} is out of range; it has {count} layers, so use 0..{count - 1} "
                          f"(or -{count}..-1 from the end)")
    return layer % count


def layer_block(index: int, count: int, **extra: Any) -> dict[str, Any]:
    """What a record says about the depth: ``index`` (0 = the first), ``count``, ``relative_depth`` = index /
    (count - 1) (1.0 = the final representation; 1.0 too when there is a single layer), ``final``, and ``extra``
    (how the layer was taken and pooled)."""
    depth = index / (count - 1) if count > 1 else 1.0
    return {"index": index, "count": count, "relative_depth": depth, "final": index == count - 1, **extra}


def _indices(owner: str, raw: str, count: int | None) -> list[int]:
    """The layer indices a ``layers=`` value names: ``all`` or ``i+j+k``."""
    if raw.strip().lower() == ALL:
        if count is None:
            raise OptionError(f"{owner}: layers=all needs the number of layers before loading, which this encoder "
                              "cannot tell (weights not available locally?); name the layers, e.g. layer=0, layer=-1")
        return list(range(count))
    out: list[int] = []
    for part in (p for p in raw.split("+") if p.strip()):
        try:
            index = int(part)
        except ValueError:
            raise OptionError(f"{owner} option layers: expected 'all' or indices like 0+2+-1, got {raw!r}") from None
        out.append(check_layer(owner, index, count) if count is not None else index)
    if not out:
        raise OptionError(f"{owner} option layers: expected 'all' or indices like 0+2+-1, got {raw!r}")
    return list(dict.fromkeys(out))


def count_layers(catalog: Catalog, requested: Requested) -> int | None:
    """How many layers the encoder ``requested`` names has, without loading weights; None when its spec cannot
    tell before loading. OptionError when the spec has no ``layer`` option at all."""
    spec, variant = catalog.get("encoders", requested.name)
    owner = f"encoder {requested.name!r}"
    if "layer" not in spec.defaults:
        raise OptionError(f"{owner} has no intermediate layers to probe (its spec declares no 'layer' option)")
    counter = getattr(spec, "count_layers", None)
    if counter is None:
        return None
    base = {k: v for k, v in requested.options.items() if k not in ("layer", "layers")}
    options = catalog.resolve("encoders", Requested(requested.name, base)).options
    return counter(variant, options)


def expand_one(catalog: Catalog, requested: Requested) -> list[Requested]:
    """``requested`` as one or more encoders: ``layers=all`` / ``layer=all`` / ``layers=i+j`` become one
    ``layer=i`` each (indices from 0, in depth order); an explicit ``layer=i`` is range-checked when the spec can
    count its layers; anything else is returned unchanged."""
    opts = dict(requested.options)
    if "layers" not in opts and "layer" not in opts:
        return [requested]
    owner = f"encoder {requested.name!r}"
    if "layers" in opts and "layer" in opts:
        raise OptionError(f"{owner}: give either layer=<i> (one depth) or layers=all (every depth), not both")
    raw = opts.pop("layers", None)
    if raw is None and str(opts["layer"]).strip().lower() == ALL:
        raw = opts.pop("layer")
    count = count_layers(catalog, requested)
    if raw is None:  # a single explicit layer: checked here when the count is known, else when it loads
        if count is not None:
            try:
                index = int(str(opts["layer"]))
            except ValueError:
                return [requested]  # not a number: option coercion gives the error
            check_layer(owner, index, count)
        return [requested]
    return [Requested(requested.name, {**opts, "layer": str(i)}) for i in _indices(owner, str(raw), count)]


def expand_layers(catalog: Catalog, requests: Sequence[Requested | str]) -> list[Requested | str]:
    """Every request of a plan's encoder list, with the layer expansions of :func:`expand_one` applied; requests
    without a layer option come back as they were given."""
    out: list[Requested | str] = []
    for item in requests:
        req = parse(item) if isinstance(item, str) else item
        out.extend([item] if not ({"layer", "layers"} & set(req.options)) else expand_one(catalog, req))
    return out


def base_label(label: str) -> str:
    """An encoder label without its ``layer`` option: ``timm/resnet18[img_size=32,layer=2]`` ->
    ``timm/resnet18[img_size=32]`` (what the layers of one encoder share)."""
    req = parse(label)
    return str(Requested(req.name, {k: v for k, v in req.options.items() if k not in ("layer", "layers")}))


def layer_of(info: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The :func:`layer_block` in an encoder's info (or a record's ``encoder`` block), None when absent."""
    block = info.get("layer")
    return block if isinstance(block, Mapping) else None
