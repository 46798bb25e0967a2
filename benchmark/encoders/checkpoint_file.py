"""Users' own weights: the ``checkpoint=`` option of ``timm/`` and ``hf/`` encoders.

A checkpoint is a ``.safetensors`` file, or a torch file read with ``torch.load(weights_only=True)`` (no pickled
code runs). Trainers wrap state dicts (``{"state_dict": ...}``, ``{"model": ...}``) and prefix their keys
(``module.`` from DDP, ``backbone.`` / ``encoder.`` from self-supervised wrappers, a transformers model's
``base_model_prefix``): both are undone when the result fits the model better. Keys of the classifier the
encoder removed are ignored. Anything else that does not fit is a one-line :class:`~benchmark.errors.DataError`
naming the missing and unexpected keys. The file's sha256 goes into the record and the encoder's fingerprint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import DataError, MissingData

#: Key prefixes trainers add around a backbone, tried in this order (and repeatedly: ``module.backbone.``).
PREFIXES = ("module.", "backbone.", "encoder.", "model.")
#: Keys of the nested state dict inside a training checkpoint, tried in this order.
WRAPPERS = ("state_dict", "model", "model_state_dict", "module", "backbone", "encoder", "teacher", "student")


def validate_checkpoint(options: Mapping[str, Any]) -> None:
    """An encoder spec's ``validate``: before any work, ``checkpoint=`` must name an existing file (ValueError,
    which the catalog words as an OptionError naming the encoder)."""
    checkpoint = options.get("checkpoint")
    if checkpoint is None:
        return
    path = Path(str(checkpoint)).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ValueError(f"checkpoint={checkpoint} {what}; give a .safetensors or .pth/.pt file")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: Path, owner: str) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (unwrapped from a training checkpoint's nesting)."""
    if not path.is_file():
        raise MissingData(f"{owner}: checkpoint {path} does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path), device="cpu")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        kind = "safetensors" if path.suffix == ".safetensors" else "torch (weights_only=True)"
        raise DataError(f"{owner}: cannot read checkpoint {path} as a {kind} file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); save it with safetensors or "
                        "torch.save(model.state_dict())") from exc
    for _ in range(3):  # {"state_dict": {"model": {...}}}
        if isinstance(data, Mapping) and not any(isinstance(v, torch.Tensor) for v in data.values()):
            inner = next((data[k] for k in WRAPPERS if isinstance(data.get(k), Mapping)), None)
            if inner is None:
                break
            data = inner
    tensors = {str(k): v for k, v in data.items() if isinstance(v, torch.Tensor)} if isinstance(data, Mapping) else {}
    if not tensors:
        raise DataError(f"{owner}: checkpoint {path} holds no state dict of tensors; save it with "
                        "torch.save(model.state_dict()) or safetensors")
    return tensors


def fit_keys(state: dict[str, torch.Tensor], wanted: set[str], prefixes: Sequence[str] = PREFIXES
             ) -> dict[str, torch.Tensor]:
    """``state`` with wrapper prefixes removed wherever that makes more of its keys match ``wanted`` (keys of
    other sub-modules, such as a projection head beside ``backbone.``, are dropped with the prefix)."""
    current = state
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if any(k.startswith(prefix) for k in wanted):
                continue
            inner = {k[len(prefix):]: v for k, v in current.items() if k.startswith(prefix)}
            if len(set(inner) & wanted) > len(set(current) & wanted):
                current, changed = inner, True
    return current


def load_into(module: torch.nn.Module, path: Path, owner: str, *, ignore: Sequence[str] = (),
              prefixes: Sequence[str] = PREFIXES, unused: Sequence[str] = ()) -> dict[str, Any]:
    """Load checkpoint ``path`` into ``module`` strictly, after :func:`fit_keys`; keys under one of ``ignore``
    (the removed classifier) are dropped, and keys under one of ``unused`` (sub-modules the features never go
    through, such as BERT's pooler) may be missing. Returns the record's ``checkpoint`` block."""
    state = read_state_dict(path, owner)
    wanted = set(module.state_dict())
    fitted = fit_keys(state, wanted, prefixes)
    dropped = sorted(k for k in fitted if k not in wanted and any(k == i or k.startswith(i + ".") for i in ignore))
    fitted = {k: v for k, v in fitted.items() if k not in dropped}
    kept = sorted(k for k in wanted - set(fitted) if any(k.startswith(u + ".") for u in unused))
    missing = sorted(wanted - set(fitted) - set(kept))
    unexpected = sorted(set(fitted) - wanted)
    if missing or unexpected:
        parts = [f"{len(keys)} {what} key(s) ({_few(keys)})" for what, keys in (("missing", missing),
                                                                               ("unexpected", unexpected)) if keys]
        raise DataError(f"{owner}: checkpoint {path.name} does not fit the architecture: {'; '.join(parts)}. "
                        "Is it a state dict of this very architecture?")
    try:
        module.load_state_dict({**{k: module.state_dict()[k] for k in kept}, **fitted}, strict=True)
    except RuntimeError as exc:
        shapes = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line]
        raise DataError(f"{owner}: checkpoint {path.name} does not fit the architecture: "
                        f"{_few(shapes) if shapes else str(exc).splitlines()[0]}") from exc
    out: dict[str, Any] = {"file": path.name, "sha256": file_sha256(path), "ignored_keys": dropped}
    if kept:
        out["unused_keys_not_in_file"] = kept
    return out


def _few(keys: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f", ... {len(keys) - n} more" if len(keys) > n else "")
