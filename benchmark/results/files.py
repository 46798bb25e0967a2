"""Reading record files safely, and the slugs record file names are made of.

Shared by the evaluation store (:mod:`benchmark.results.store`) and throughput records
(:mod:`benchmark.results.throughput`): reading never opens anything but a regular file (a FIFO named ``x.json``
would block a reader forever), refuses oversized files and decodes UTF-8 before parsing JSON.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

from benchmark.results.record import InvalidRecord
from benchmark.storage import safe_json

#: No record comes near this (they are a few KB; a 10,000-class label list is under 1 MB).
MAX_RECORD_BYTES = 64 * 2**20


def slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters than ``A-Za-z0-9._-`` become ``-``, at most 60."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes(path: Path) -> bytes:
    """The bytes of a regular file; anything else (checked before and after opening, which never blocks)
    raises :class:`InvalidRecord`, as do unreadable and oversized files."""
    where = str(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidRecord(where, f"is {_kind(st.st_mode)}, not a regular file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as fh:  # closes fd
            st = os.fstat(fh.fileno())  # it may have been replaced since the stat
            if not stat.S_ISREG(st.st_mode):
                raise InvalidRecord(where, f"is {_kind(st.st_mode)}, not a regular file")
            data = fh.read(MAX_RECORD_BYTES + 1)
    except OSError as exc:
        raise InvalidRecord(where, f"cannot be read ({exc.strerror or exc})") from exc
    if len(data) > MAX_RECORD_BYTES:
        raise InvalidRecord(where, f"is larger than {MAX_RECORD_BYTES // 2**20} MiB; not a repbench record")
    return data


def read_json(path: Path) -> Any:
    """The JSON value in a regular UTF-8 file; raises :class:`InvalidRecord` saying why it cannot be read."""
    where = str(path)
    try:
        text = read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord(where, f"is not UTF-8 text (invalid byte at offset {exc.start})") from exc
    try:
        return safe_json.loads(text)
    except RecursionError as exc:
        raise InvalidRecord(where, "is not valid JSON (nested too deeply)") from exc
    except ValueError as exc:  # JSONDecodeError, and over-long integers
        raise InvalidRecord(where, f"is not valid JSON ({exc})") from exc
