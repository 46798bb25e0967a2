"""In-memory objects as encoders, for the Python API (:func:`benchmark.api.evaluate`).

:func:`as_encoder` turns what a researcher has in a notebook into an :class:`~benchmark.specs.Encoder`:

- an object that already meets the Encoder contract: used as it is;
- a timm model (an ``nn.Module`` with ``pretrained_cfg``): pooled pre-logits features, preprocessing from its
  ``pretrained_cfg`` (timm's ``resolve_model_data_config`` + ``create_transform``);
- a ``torch.nn.Module`` plus ``preprocess``, a per-sample callable (a torchvision transform for images);
- a sentence-transformers-like text model: any object with ``encode(list[str]) -> (B, D)``.

Modules are fingerprinted by their weights (:func:`~benchmark.encoders.base.weights_hash`), so changed weights
never reuse cached features or finished records; objects without weights get a fresh fingerprint each time.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from benchmark.encoders.base import TorchImageEncoder, config_hash, count_params, weights_hash
from benchmark.errors import OptionError
from benchmark.specs import MODALITIES, Encoder


def as_encoder(obj: Any, *, preprocess: Callable[[Any], Any] | None = None, modality: str | None = None,
               name: str = "model") -> Encoder:
    """``obj`` as an Encoder (see the module docstring for what is accepted); OptionError for anything else."""
    if modality is not None and modality not in MODALITIES:
        raise OptionError(f"modality={modality!r}: use one of {', '.join(MODALITIES)}")
    if preprocess is None and isinstance(obj, Encoder):
        return obj
    if isinstance(obj, torch.nn.Module) and preprocess is not None:
        return ModuleEncoder(obj, preprocess, modality or "image", name)
    if isinstance(obj, torch.nn.Module) and getattr(obj, "pretrained_cfg", None) is not None:
        return timm_model_encoder(obj, name)
    if callable(getattr(obj, "encode", None)) and preprocess is None:
        return TextModelEncoder(obj, name)
    what = type(obj).__name__
    hint = (" pass preprocess= (a callable turning one raw sample into a tensor) with a torch.nn.Module"
            if isinstance(obj, torch.nn.Module) else "")
    raise OptionError(f"encoder object {what}: not an Encoder (modality, embed_dim, info, fingerprint, "
                      f"preprocess, encode), a timm model, a torch.nn.Module with preprocess=, or a model with "
                      f"encode(list[str]);{hint or ' give a spec string such as timm/resnet18 instead'}")


def _flatten(out: Any) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    if isinstance(out, np.ndarray):
        out = torch.from_numpy(out)
    if not isinstance(out, torch.Tensor):
        raise OptionError(f"the model returned {type(out).__name__}; it must return a (B, D) tensor or array")
    return out.float().flatten(1)


class ModuleEncoder(torch.nn.Module):
    """A ``torch.nn.Module`` whose ``forward(batch)`` gives features, with a per-sample ``preprocess``; images
    are converted to RGB first (as every built-in image encoder does)."""

    def __init__(self, module: torch.nn.Module, preprocess: Callable[[Any], Any], modality: str, name: str) -> None:
        super().__init__()
        self.module = module.eval()
        self.transform = preprocess
        self.modality = modality
        self.name = name
        self.embed_dim: int | None = None  # known after the first batch

    def preprocess(self, samples: Sequence[Any]) -> Any:
        items = [self.transform(s.convert("RGB") if self.modality == "image" else s) for s in samples]
        return torch.stack([torch.as_tensor(i) for i in items])

    def encode(self, batch: Any) -> torch.Tensor:
        return _flatten(self.module(batch))

    @functools.cached_property
    def weights_hash(self) -> str:
        """Computed once: the harness never changes an encoder after loading it."""
        return weights_hash(self.module)

    @property
    def info(self) -> dict[str, Any]:
        return {"weights": f"in-memory:{type(self.module).__name__}", "weights_hash": self.weights_hash,
                "params": count_params(self.module), "preprocess": {"transform": repr(self.transform)[:500]}}

    @property
    def fingerprint(self) -> str:
        return config_hash({"name": self.name, "weights": self.weights_hash, "pre": repr(self.transform)})


class _TimmPooled(torch.nn.Module):
    """A timm model's pooled pre-logits features, whatever its classifier."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m: Any = self.model
        return m.forward_head(m.forward_features(x), pre_logits=True)


def timm_model_encoder(model: Any, name: str) -> TorchImageEncoder:
    """A timm model object as an image encoder, preprocessed as its ``pretrained_cfg`` says."""
    from timm.data import create_transform, resolve_model_data_config

    cfg = resolve_model_data_config(model)
    transform = create_transform(**cfg, is_training=False)
    pre = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    arch = model.pretrained_cfg.get("architecture") or type(model).__name__
    return TorchImageEncoder(_TimmPooled(model.eval()), int(model.num_features), transform, pre,
                             f"in-memory:{arch}", name)


class TextModelEncoder:
    """A text model with ``encode(list[str])`` (sentence-transformers and look-alikes). Its own batching and
    progress bar are turned off where its ``encode`` accepts ``batch_size`` / ``show_progress_bar``."""

    modality = "text"

    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name
        dim = getattr(model, "get_sentence_embedding_dimension", None)
        self.embed_dim: int | None = int(dim()) if callable(dim) and dim() else None
        try:
            params = inspect.signature(model.encode).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self._kwargs = {k: v for k, v in (("show_progress_bar", False), ("convert_to_numpy", True))
                        if k in params}
        self._batch_kw = "batch_size" in params
        is_module = isinstance(model, torch.nn.Module)
        self._weights = weights_hash(model) if is_module else uuid.uuid4().hex[:16]

    def preprocess(self, samples: Sequence[Any]) -> list[str]:
        return [str(s) for s in samples]

    def encode(self, batch: list[str]) -> torch.Tensor:
        kwargs = dict(self._kwargs, **({"batch_size": len(batch)} if self._batch_kw else {}))
        with torch.no_grad():
            return _flatten(self.model.encode(list(batch), **kwargs))

    @property
    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"weights": f"in-memory:{type(self.model).__name__}", "weights_hash": self._weights}
        if isinstance(self.model, torch.nn.Module):
            out["params"] = count_params(self.model)
        return out

    @property
    def fingerprint(self) -> str:
        return config_hash({"name": self.name, "weights": self._weights})


def default_name(obj: Any) -> str:
    """A spec-safe name for an in-memory object: ``py/<timm architecture or class name>``."""
    cfg = getattr(obj, "pretrained_cfg", None)
    base = (cfg or {}).get("architecture") if isinstance(cfg, dict) else None
    base = base or getattr(obj, "name", None) or type(obj).__name__
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in str(base)) or "model"
    return f"py/{safe}"
