"""One digest helper: a short, stable hex id of any JSON-able payload (cache keys, fingerprints, cell ids)."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def digest(payload: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of sha256 over ``payload``'s canonical JSON (sorted keys; values JSON
    cannot hold are written with ``str``). Equal payloads give equal digests across runs and machines."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
