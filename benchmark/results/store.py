"""The results store: a folder of records, one JSON file per cell (encoder x dataset x protocol x seed).

A failed cell is a record with ``status: "error"`` and ``error`` set; a rerun retries it, and skips cells whose
record is ``"ok"``. Records are written atomically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from benchmark.atomic import write_json
from benchmark.errors import RecordError
from benchmark.results.record import cell_id, validate


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def record_filename(encoder: str, dataset: str, protocol: str, seed: int) -> str:
    cid = cell_id(encoder, dataset, protocol, seed)
    return f"{_slug(encoder)}__{_slug(dataset)}__{_slug(protocol)}__s{seed}__{cid}.json"


def record_filename(encoder: str, dataset: str, protocol: str, seed: int) -> str:
    cid = cell_id(encoder, dataset, protocol, seed)
    return f"{_slug(encoder)}__{_slug(dataset)}__{_slug(protocol)}__s{seed}__{cid}.json"


class ResultStore:
    """A folder of records, one JSON file per cell."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, encoder: str, dataset: str, protocol: str, seed: int) -> Path:
        return self.root / record_filename(encoder, dataset, protocol, seed)

    def finished(self, encoder: str, dataset: str, protocol: str, seed: int, digest: str | None = None
                 ) -> dict[str, Any] | None:
        """The cell's record if it exists, succeeded and (when ``digest`` is given) was made with the same
        resolved configuration (a rerun skips it), else None."""
        p = self.path(encoder, dataset, protocol, seed)
        if not p.exists():
            return None
        try:
            record = validate(json.loads(p.read_text()), str(p))
        except (ValueError, OSError):
            return None
        if record["status"] != "ok" or (digest is not None and record.get("config_digest") != digest):
            return None
        return record

    def write(self, record: Mapping[str, Any]) -> Path:
        e, d, p = record["encoder"]["label"], record["dataset"]["label"], record["protocol"]["label"]
        path = self.path(e, d, p, record["seed"])
        write_json(path, record)
        return path

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from load_records(self.root)


def load_records(*roots: Path | str) -> Iterator[dict[str, Any]]:
    """Every record under the given folders (recursively) or files; invalid files raise RecordError."""
    for root in roots:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"results path {root} does not exist")
        files = [root] if root.is_file() else sorted(root.rglob("*.json"))
        for f in files:
            try:
                data = json.loads(f.read_text())
            except json.JSONDecodeError as exc:
                raise RecordError(f"{f}: not valid JSON ({exc})") from exc
            yield validate(data, str(f))
