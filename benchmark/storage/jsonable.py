"""Plain JSON values from what plugins hand over (numpy and torch numbers and arrays, tuples, paths), before a
config is digested or a record is written."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


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
