"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target.

A reader (or a rerun after a crash) sees either the old file or the complete new one, never half of one.

Contracts:

* The temporary file is ``.<target name>.<8 random characters>.tmp`` beside the target (:data:`TEMP_PATTERN`).
* The finished file gets the mode an ordinary ``open(target, "w")`` would give it: ``0o666`` minus the
  process umask (``0o644`` under the usual umask 022, ``0o600`` under 077). The temporary file is created with
  ``os.open(..., 0o666)`` so the kernel applies the umask itself (no process-wide ``os.umask`` juggling).
* A process killed mid-write (SIGKILL, power loss) leaves its temporary file behind: nothing can remove it at
  the time. :func:`remove_stale_temps` removes such leftovers later; it only touches files that match
  :data:`TEMP_PATTERN` and were last modified more than :data:`STALE_AFTER_S` seconds ago, so a concurrent
  writer's live temporary file (written within seconds) is never taken from under it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The names of the temporary files :func:`atomic_path` creates (and older versions did, through mkstemp), and
#: those ``safetensors.save_file`` (tempfile crate: ``.tmp`` and 6 characters) left in run folders before
#: repbench wrote safetensors through :func:`atomic_path`.
TEMP_PATTERN = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$|^\.tmp[A-Za-z0-9]{6}$")
#: A temporary file untouched for this long belongs to a dead writer: no write of repbench's takes an hour
#: without touching its file, and a live writer's file is always younger.
STALE_AFTER_S = 3600.0
_FILE_MODE = 0o666  # minus the umask, applied by the kernel at creation


def _create_temp(target: Path) -> Path:
    """Create (exclusively) and close an empty temporary file beside ``target``; its mode follows the umask."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {target}")  # pragma: no cover


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success it replaces ``target``, on error it is removed.

    The parent folder is created when missing. The final file's mode is ``0o666 & ~umask``.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(target: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_safetensors(target: Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    """Tensors as a safetensors file, written atomically through :func:`atomic_path` (mode ``0o666 & ~umask``,
    a temp the sweep knows). ``safetensors.torch.save_file`` is not used: it writes through a temp of its own,
    created 0600, which a kill leaves where :func:`remove_stale_temps` did not look."""
    from safetensors.torch import save

    write_bytes(target, save(tensors, metadata=metadata))


def write_json(target: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``target`` atomically; NaN and infinities are refused (ValueError)."""
    write_text(target, json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def remove_stale_temps(folder: Path | str, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporary files of atomic writes killed long ago from ``folder`` (not its subfolders).

    Only regular files whose name matches :data:`TEMP_PATTERN` and whose modification time is more than
    ``older_than_s`` seconds in the past are removed; a missing folder, or a file another process removes first
    or that cannot be removed (permissions), is skipped silently. Returns the paths removed.
    """
    folder = Path(folder)
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return []
    cutoff = time.time() - older_than_s
    removed: list[Path] = []
    for entry in entries:
        if not TEMP_PATTERN.match(entry.name):
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or entry.stat(follow_symlinks=False).st_mtime >= cutoff:
                continue
            os.unlink(entry.path)
        except (FileNotFoundError, PermissionError):
            continue
        removed.append(Path(entry.path))
    return removed
