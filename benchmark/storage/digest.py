"""A short, stable hex id of any JSON-able payload (cache keys, fingerprints, cell ids), and the plain JSON values
plugins' numbers and infos become before they are digested or written."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch


def digest(payload: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of sha256 over ``payload``'s canonical JSON (sorted keys; values JSON
    cannot hold are written with ``str``). Equal payloads give equal digests across runs and machines."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def jsonable(value: Any) -> Any:
    """Plain JSON types from what plugins put in info/metrics: numpy and torch values, tuples, paths; a
    non-finite float becomes null and anything unknown its string form."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
