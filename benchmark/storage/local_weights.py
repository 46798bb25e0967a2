"""What identifies an encoder's local weight files, told without loading them.

A finished record is reused when its ``config_digest`` matches (:func:`benchmark.plan.config_digest`): for an
encoder whose weights come from a local file (``run:<folder>``, a ``checkpoint=<file>`` option) the name alone
does not say which weights were evaluated, so the file's content hash goes into the digest and new weights behind
the same name rerun the cell. Hashes are kept per (path, size, mtime, inode) for the life of the process.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

_HASHES: dict[tuple[str, int, int, int], str] = {}
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str | None:
    """sha256 of a file's bytes (16 hex), or None when there is no such file."""
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except OSError:
        return None
    if not p.is_file():
        return None
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key not in _HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        _HASHES[key] = h.hexdigest()[:16]
    return _HASHES[key]


def local_weights_id(resolved: Any) -> dict[str, str] | None:
    """The content hashes of the local weight files behind a resolved encoder: its spec's ``weights_id`` and a
    ``checkpoint`` option naming a file; None when there are none (the digest of other encoders is unchanged)."""
    out: dict[str, str] = {}
    weights_id = getattr(resolved.spec, "weights_id", None)
    if weights_id is not None:
        wid = weights_id(resolved.variant, resolved.options)
        if wid:
            out["weights"] = wid
    checkpoint = resolved.options.get("checkpoint") if hasattr(resolved.options, "get") else None
    if isinstance(checkpoint, (str, os.PathLike)) and str(checkpoint):
        wid = file_sha256(checkpoint)
        if wid:
            out["checkpoint"] = wid
    return out or None


def checkpoint_name(path: str | os.PathLike[str]) -> str:
    """How labels and tables name a checkpoint file: its file name and a short content hash
    (``model.safetensors@1a2b3c``), never the folder it sits in (a user's absolute path stays in the spec the
    user typed, where it is needed to load); the name alone when there is no such file."""
    name = Path(str(path)).expanduser().name or str(path)
    sha = file_sha256(path)
    return f"{name}@{sha[:6]}" if sha else name


def folder_sha256(folder: str | os.PathLike[str]) -> str | None:
    """A content hash (16 hex) of a model folder: the names and hashes of the files directly in it; None when it
    is not a folder."""
    p = Path(folder).expanduser()
    if not p.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(x for x in p.iterdir() if x.is_file()):
        h.update(f"{f.name}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()[:16]


def local_folder_name(variant: str) -> str:
    """``EncoderSpec.name_of`` of families whose variant may be a local folder (``hf/<hub id or folder>``): a
    folder is named by its last part and a short content hash (``hf/my-bert@1a2b3c``), so no absolute path
    reaches a record or a table and new weights in the same folder get a new name; a hub id stays as it is."""
    sha = folder_sha256(variant)
    if sha is None:
        return variant
    return f"{Path(variant).expanduser().resolve().name}@{sha[:6]}"
