"""Encoders: the building blocks plugin authors use, and the built-in encoder plugins beside them.

Building blocks (:mod:`benchmark.encoders.base`): :class:`TorchImageEncoder` wraps any backbone with a
per-image transform; :func:`weights_hash`, :func:`config_hash` and :func:`count_params` give the fingerprint
and the record fields; :func:`pil_to_array` turns images into arrays. Built-in plugin modules, each a template
for a third-party one: :mod:`~benchmark.encoders.pixels`, :mod:`~benchmark.encoders.timm`,
:mod:`~benchmark.encoders.text` (``hf/``, MiniLM, WordLlama, TF-IDF). Intermediate layers
(:mod:`~benchmark.encoders.layers`): :func:`check_layer` and :func:`layer_block` for an encoder's ``layer`` option;
timm's in :mod:`~benchmark.encoders.timm_layers`, Hugging Face text models' in
:mod:`~benchmark.encoders.text_layers`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from benchmark.encoders.base import (
        TorchImageEncoder,
        config_hash,
        count_params,
        pil_to_array,
        weights_hash,
    )
    from benchmark.encoders.layers import check_layer, layer_block

#: Where each re-exported name lives. Imported on first use (PEP 562), so importing a light module of this
#: package (:mod:`~benchmark.encoders.builtin`, the built-ins' registration) does not import torch.
_EXPORTS = {"TorchImageEncoder": "base", "config_hash": "base", "count_params": "base", "pil_to_array": "base",
            "weights_hash": "base", "check_layer": "layers", "layer_block": "layers"}

__all__ = ["TorchImageEncoder", "check_layer", "config_hash", "count_params", "layer_block", "pil_to_array",
           "weights_hash"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
