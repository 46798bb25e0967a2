"""Training checkpoints: one safetensors file of tensors and one JSON file of everything else, never pickle.

Layout of a workdir (contract):

- ``checkpoint-<step>-<random>.safetensors``: every tensor of the state (model and optimiser tensors, RNG
  states as uint8 tensors, ...) in one flat dict of contiguous CPU tensors; its metadata holds ``format``,
  ``step`` and ``config_digest``.
- ``checkpoint.json`` (:data:`CHECKPOINT`): ``format`` (:data:`FORMAT`), ``config_digest``, ``tensors`` (the name
  of the safetensors file it belongs to), the caller's metadata (step, curves, ...) and ``state``: the
  nested state with each tensor replaced by ``{"__tensor__": key}``; tuples, dicts with non-string keys and
  non-finite floats are encoded so they come back exactly (:func:`encode` / :func:`decode`).

Both files are written by temp + rename (:mod:`benchmark.storage.atomic`), the tensors first, then the JSON that names
them; older tensor files are removed only after that. A process killed at any point leaves the last complete
checkpoint readable (at worst an orphan tensor file, removed by the next save). Reading goes through the JSON, so
a tensor file the JSON does not name is never read.
"""

from __future__ import annotations

import math
import random
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.errors import DataError, OptionError
from benchmark.storage import safe_json
from benchmark.storage.atomic import remove_stale_temps, write_json, write_safetensors

CHECKPOINT = "checkpoint.json"
FORMAT = "repbench-train-checkpoint/1"
_TENSOR_GLOB = "checkpoint-*.safetensors"
_MARKERS = ("__tensor__", "__tuple__", "__items__", "__float__")


def encode(value: Any, tensors: dict[str, torch.Tensor], path: str = "") -> Any:
    """``value`` as JSON-able data; each tensor moves into ``tensors`` (a contiguous CPU copy) under its path."""
    if isinstance(value, torch.Tensor):
        key = path or "tensor"
        while key in tensors:
            key += "#"
        tensors[key] = value.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode(v, tensors, f"{path}/{i}") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        sub = {k: encode(v, tensors, f"{path}/{k}" if path else str(k)) for k, v in value.items()}
        if all(isinstance(k, str) and k not in _MARKERS for k in sub):
            return sub
        return {"__items__": [[encode(k, tensors), v] for k, v in sub.items()]}
    raise TypeError(f"cannot checkpoint a {type(value).__name__} at {path or 'the top'}")


def decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(value, list):
        return [decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__float__" in value:
        return float(value["__float__"])
    if "__tuple__" in value:
        return tuple(decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {decode(k, tensors): decode(v, tensors) for k, v in value["__items__"]}
    return {k: decode(v, tensors) for k, v in value.items()}


def read_meta(workdir: Path | str) -> dict[str, Any] | None:
    """The parsed ``checkpoint.json`` of ``workdir``, or None when there is none. DataError when unreadable."""
    path = Path(workdir) / CHECKPOINT
    if not path.is_file():
        return None
    try:
        meta = safe_json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: invalid JSON, too deep, duplicate key
        raise DataError(f"{path}: not a readable training checkpoint ({exc}); delete it to start over") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("tensors"), str):
        raise DataError(f"{path}: not a repbench training checkpoint ({FORMAT}); delete it to start over")
    return meta


def check_workdir(workdir: Path | str, config_digest: str) -> dict[str, Any] | None:
    """The metadata of ``workdir``'s checkpoint when it belongs to ``config_digest``, None when there is none.

    OptionError (and nothing touched) when it holds a checkpoint of another configuration."""
    meta = read_meta(workdir)
    if meta is not None and meta.get("config_digest") != config_digest:
        raise OptionError(
            f"{workdir} holds a training checkpoint of another configuration (config digest "
            f"{meta.get('config_digest')}, this run's is {config_digest}); nothing was overwritten: use another "
            f"--out/workdir, or delete {workdir} to start over")
    return meta


def save(workdir: Path | str, config_digest: str, meta: Mapping[str, Any], state: Any) -> Path:
    """Write ``state`` (nested dicts, lists, tuples, tensors, plain values) and ``meta`` (JSON-able) as the
    checkpoint of ``workdir``, atomically (see the module docstring). Returns the JSON's path."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = encode(state, tensors)
    step = int(meta.get("step", 0))
    name = f"checkpoint-{step:08d}-{secrets.token_hex(4)}.safetensors"
    write_safetensors(workdir / name, tensors,
                      metadata={"format": FORMAT, "step": str(step), "config_digest": config_digest})
    target = workdir / CHECKPOINT
    write_json(target, {**meta, "format": FORMAT, "config_digest": config_digest, "tensors": name,
                        "state": skeleton})
    for old in workdir.glob(_TENSOR_GLOB):
        if old.name != name:
            old.unlink(missing_ok=True)
    remove_stale_temps(workdir)
    return target


def clear(workdir: Path | str) -> None:
    """Remove ``workdir``'s checkpoint (the JSON first, so a kill midway leaves no readable half), e.g. before
    retraining a finished run on purpose. Other files are left alone."""
    workdir = Path(workdir)
    (workdir / CHECKPOINT).unlink(missing_ok=True)
    for old in workdir.glob(_TENSOR_GLOB):
        old.unlink(missing_ok=True)


def load(workdir: Path | str) -> tuple[dict[str, Any], Any] | None:
    """(metadata, state) of ``workdir``'s checkpoint, tensors on the CPU, or None when there is none.

    Tensors are read with ``safetensors.safe_open`` only; DataError when the files do not belong together."""
    meta = read_meta(workdir)
    if meta is None:
        return None
    from safetensors import safe_open

    path = Path(workdir) / meta["tensors"]
    if not path.is_file():
        raise DataError(f"{Path(workdir) / CHECKPOINT} names {path.name}, which is missing; delete {workdir} "
                        "to start over")
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            stamp = fh.metadata() or {}
            if stamp.get("step") != str(meta.get("step")) or stamp.get("config_digest") != meta.get("config_digest"):
                raise DataError(f"{path} does not belong to {Path(workdir) / CHECKPOINT}; delete {workdir} to "
                                "start over")
            for key in fh.keys():  # noqa: SIM118 (safe_open has keys(), not iteration)
                tensors[key] = fh.get_tensor(key)
    except DataError:
        raise
    except Exception as exc:  # SafetensorError (truncated, damaged), OSError
        raise DataError(f"{path}: a damaged checkpoint file ({type(exc).__name__}: {str(exc)[:200]}); delete "
                        f"{workdir} to start over") from None
    try:
        return meta, decode(meta.get("state"), tensors)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{Path(workdir) / CHECKPOINT}: its state does not match {path.name} ({type(exc).__name__}: "
                        f"{exc}); delete {workdir} to start over") from None


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global RNG states, checkpointable: torch's (and ``device``'s, on CUDA) as uint8 tensors, numpy's and
    Python's as plain values."""
    name, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    return {"torch": torch.get_rng_state(), "numpy": [name, np.asarray(keys).tolist(), pos, has_gauss, gauss],
            "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore what :func:`rng_state` returned (after a round trip through :func:`save` / :func:`load`)."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
