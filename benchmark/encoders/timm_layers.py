"""Intermediate layers of timm models: the pooled output of each stage (CNNs) or block (vision transformers).

The layers are timm's feature points, ``model.feature_info`` (one per stage of a CNN or hierarchical
transformer, one per block of a ViT), the same list ``forward_intermediates`` walks, so their number is known
from the architecture alone (:func:`count_timm_layers` builds it on the meta device: no weights, no memory).

How a layer becomes a vector, the way the model's head pools:

- ``tokens`` (ViT-like: ``forward_intermediates`` can return the prefix tokens): block ``i``'s whole token
  sequence goes through the model's final norm and its head pooling, ``forward_head(norm(x), pre_logits=True)``:
  the class token or the average of patch tokens, as the model's ``global_pool`` says (fc-norm included). The
  network stops after block ``i``.
- ``maps`` (CNNs, hierarchical transformers): stage ``i``'s (B, C, H, W) map, global-average-pooled to (B, C); the
  network stops after stage ``i``.
- ``hooks`` (a model without ``forward_intermediates``): forward hooks on the modules ``feature_info`` names,
  averaged over every axis but the channels.
- the last layer is always the model's own pooled output (what the encoder gives without ``layer``), so
  ``layer=-1`` reproduces the default features exactly; for models with a head convolution (EfficientNet,
  MobileNetV3, VGG) it is wider than the last stage.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

from benchmark.encoders.base import TorchImageEncoder, config_hash
from benchmark.encoders.layers import check_layer, layer_block
from benchmark.errors import OptionError


def _feature_info(model: torch.nn.Module, owner: str) -> Any:
    info = getattr(model, "feature_info", None)
    if not info:
        raise OptionError(f"{owner}: this timm model exposes no intermediate layers (no feature_info), so the "
                          "layer option cannot be used with it")
    return info


def timm_layer_count(model: torch.nn.Module, owner: str = "encoder") -> int:
    """The number of layers ``layer=`` selects from: timm's feature points."""
    return len(_feature_info(model, owner))


def create_model(timm: Any, variant: str, kwargs: dict[str, Any], img_size: int | None) -> Any:
    """``timm.create_model(variant, **kwargs)``, with ``img_size`` where the model takes one (convnets do not)."""
    if img_size is not None:
        try:  # transformers take the input size as an argument; convnets do not need it
            return timm.create_model(variant, img_size=img_size, **kwargs)
        except TypeError:
            pass
    return timm.create_model(variant, **kwargs)


def count_timm_layers(variant: str | None, options: Mapping[str, Any]) -> int | None:
    """``EncoderSpec.count_layers`` of ``timm/``: the architecture built on the meta device (no weights are read
    or downloaded, no memory is allocated; a model whose construction needs real tensors is built randomly
    initialised on the CPU instead); None for a name timm does not know (loading gives that error)."""
    import timm

    if not variant or not timm.is_model(variant.split(".")[0]):
        return None
    kwargs = {"pretrained": False, "num_classes": 0}
    try:
        with torch.device("meta"):
            model = create_model(timm, variant, kwargs, options.get("img_size"))
    except Exception:  # e.g. an init that reads tensor values (.item()), which meta tensors do not have
        model = create_model(timm, variant, kwargs, options.get("img_size"))
    return timm_layer_count(model, f"encoder 'timm/{variant}'")


def _mode(model: torch.nn.Module) -> str:
    fwd = getattr(model, "forward_intermediates", None)
    if fwd is None:
        return "hooks"
    return "tokens" if "return_prefix_tokens" in inspect.signature(fwd).parameters else "maps"


def _global_average(x: torch.Tensor) -> torch.Tensor:
    """(B, C, ...) -> (B, C) for maps; (B, L, C) token sequences average over L."""
    if x.ndim == 4:
        return x.mean((2, 3))
    if x.ndim == 3:
        return x.mean(1)
    return x.flatten(1)


class TimmLayerEncoder(TorchImageEncoder):
    """A timm encoder's ``index``-th of ``count`` layers (see the module docstring for how each is pooled).

    Same backbone, weights, transform and weights hash as the full encoder; the fingerprint adds the layer, except
    for the last one, which is the full encoder's representation and keeps its fingerprint (and cache entry).
    """

    def __init__(self, base: TorchImageEncoder, layer: int) -> None:
        model = base.backbone
        count = timm_layer_count(model, f"encoder {base.name!r}")
        index = check_layer(f"encoder {base.name!r}", layer, count)
        self.index, self.count = index, count
        self.mode = "final" if index == count - 1 else _mode(model)
        info = _feature_info(model, base.name)
        if self.mode == "tokens":
            dim = int(getattr(model, "head_hidden_size", None) or model.num_features)  # type: ignore[arg-type]
        elif self.mode == "final":
            dim = base.embed_dim
        else:
            dim = int(info[index]["num_chs"])
        module = info[index].get("module") if self.mode != "final" else None
        super().__init__(model, dim, base.transform, base.preprocess_config, base.weights, base.name,
                         checkpoint=base.checkpoint)
        self.module_name: str | None = module

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        model: Any = self.backbone
        if self.mode == "final":
            return super().encode(batch)
        if self.mode == "hooks":
            return _global_average(self._hooked(batch))
        common = {"indices": [self.index], "stop_early": True, "intermediates_only": True}
        if self.mode == "maps":
            return _global_average(model.forward_intermediates(batch, **common)[0])
        out = model.forward_intermediates(batch, norm=True, output_fmt="NLC", return_prefix_tokens=True, **common)[0]
        tokens = torch.cat([out[1], out[0]], dim=1) if isinstance(out, tuple) else out  # prefix tokens first
        return model.forward_head(tokens, pre_logits=True).flatten(1)

    def _hooked(self, batch: torch.Tensor) -> torch.Tensor:
        """The output of the feature module, caught by a forward hook during a full forward pass."""
        caught: list[torch.Tensor] = []
        module = self.backbone.get_submodule(self.module_name or "")
        handle = module.register_forward_hook(lambda _m, _i, out: caught.append(out))
        try:
            self.backbone.forward_features(batch)  # type: ignore[operator]
        finally:
            handle.remove()
        return caught[-1]

    @property
    def layer(self) -> dict[str, Any]:
        pool = {"final": "the model's head", "tokens": "final norm + head pooling", "maps": "global average",
                "hooks": "global average"}[self.mode]
        return layer_block(self.index, self.count, source=self.mode, pool=pool, module=self.module_name)

    @property
    def info(self) -> dict[str, Any]:
        return {**super().info, "layer": self.layer}

    @property
    def fingerprint(self) -> str:
        if self.mode == "final":
            return super().fingerprint
        ident: dict[str, Any] = {"name": self.name, "weights": self.weights_hash, "pre": self.preprocess_config,
                                 "layer": {"index": self.index, "count": self.count, "source": self.mode}}
        if self.checkpoint is not None:
            ident["checkpoint"] = self.checkpoint.get("sha256")
        return config_hash(ident)
