"""The Result record (versioned JSON), its cell identity, the environment block, and the results store.

One record per cell (encoder x dataset x protocol x seed). A failed cell is a record with ``status: "error"`` and
``error`` set; a rerun retries it, and skips cells whose record is ``"ok"``. Records are written atomically.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

from .atomic import write_json
from .plugins import dist_version

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("schema_version", "id", "status", "encoder", "dataset", "protocol", "metrics", "seed",
                   "timings", "environment", "error")


class RecordError(ValueError):
    """A results file that is not a valid repbench record; the message names the file and the field."""


def cell_id(encoder: str, dataset: str, protocol: str, seed: int) -> str:
    """A stable id for a cell from the canonical labels (name plus non-default options) and the seed."""
    key = json.dumps({"e": encoder, "d": dataset, "p": protocol, "s": seed}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def record_filename(encoder: str, dataset: str, protocol: str, seed: int) -> str:
    cid = cell_id(encoder, dataset, protocol, seed)
    return f"{_slug(encoder)}__{_slug(dataset)}__{_slug(protocol)}__s{seed}__{cid}.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@cache
def git_sha() -> str | None:
    """The commit of the repbench source tree when it is a git checkout (an editable install), else None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(device: str, plugin_versions: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """What produced a record: versions of repbench and its core libraries, plugins, the device, the git sha."""
    import os

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    else:
        device_name = f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return {
        "repbench": dist_version("repbench"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": dist_version("timm"),
        "numpy": dist_version("numpy"),
        "scikit-learn": dist_version("scikit-learn"),
        "platform": platform.platform(),
        "device": device,
        "device_name": device_name,
        "cuda": torch.version.cuda if device.startswith("cuda") else None,
        "git_sha": git_sha(),
        "plugins": dict(plugin_versions or {}),
    }


def validate(record: Any, where: str) -> dict[str, Any]:
    """Check a loaded record's shape; raise :class:`RecordError` naming ``where`` and the field at fault."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: a record must be a JSON object")
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
        raise RecordError(f"{where}: missing field(s) {', '.join(missing)}; is it a repbench result record?")
    if record["schema_version"] != SCHEMA_VERSION:
        raise RecordError(f"{where}: schema_version {record['schema_version']!r} is not supported "
                          f"(this repbench reads {SCHEMA_VERSION}); upgrade repbench or rerun the cell")
    if record["status"] not in ("ok", "error"):
        raise RecordError(f"{where}: status must be 'ok' or 'error', got {record['status']!r}")
    for block in ("encoder", "dataset", "protocol"):
        if not isinstance(record[block], dict) or "name" not in record[block]:
            raise RecordError(f"{where}: field {block!r} must be an object with a 'name'")
    return record


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
