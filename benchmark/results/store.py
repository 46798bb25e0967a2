"""The results store: a folder of records, one JSON file per cell (encoder x dataset x protocol x seed).

A failed cell is a record with ``status: "error"`` and ``error`` set; a rerun retries it, and skips cells whose
record is ``"ok"``. Records are written atomically.

Reading never opens anything but a regular file (a FIFO named ``x.json`` would block a reader forever), decodes
UTF-8 and validates with :meth:`Record.from_json`. :func:`load_records` is strict (the first bad file raises);
:func:`scan_records` reads every good record and lists each bad file with the reason.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from benchmark import safe_json
from benchmark.atomic import write_json
from benchmark.errors import MissingData, RecordError, WriteError
from benchmark.results.record import InvalidRecord, Record, cell_id
from benchmark.results.throughput import PREFIX as THROUGHPUT_PREFIX

#: No record comes near this (they are a few KB; a 10,000-class label list is under 1 MB).
MAX_RECORD_BYTES = 64 * 2**20


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "x"


def record_filename(encoder: str, dataset: str, protocol: str, seed: int) -> str:
    """The file name of a cell's record: readable slugs of the labels, the seed and the cell id."""
    cid = cell_id(encoder, dataset, protocol, seed)
    return f"{_slug(encoder)}__{_slug(dataset)}__{_slug(protocol)}__s{seed}__{cid}.json"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def _read_bytes(path: Path) -> bytes:
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
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRecord(where, f"is not UTF-8 text (invalid byte at offset {exc.start})") from exc
    try:
        return safe_json.loads(text)
    except RecursionError as exc:
        raise InvalidRecord(where, "is not valid JSON (nested too deeply)") from exc
    except ValueError as exc:  # JSONDecodeError, and over-long integers
        raise InvalidRecord(where, f"is not valid JSON ({exc})") from exc


def read_record(path: Path | str) -> Record:
    """The validated record in one file; raises :class:`InvalidRecord` (a :class:`RecordError`)."""
    path = Path(path)
    return Record.from_json(read_json(path), str(path))


def _files(root: Path) -> list[Path]:
    """The candidate evaluation-record files of one results path: itself unless a folder, else its ``*.json``
    (recursively, sorted; folders named ``*.json`` included, to be reported), leaving out throughput records
    (``throughput__*.json``, their own schema in :mod:`benchmark.results.throughput`), which share results
    folders. A missing path raises :class:`MissingData`."""
    if not root.exists():  # a broken symlink counts as missing
        raise MissingData(f"results path {root} does not exist")
    if not root.is_dir():
        return [root]
    return sorted(f for f in root.rglob("*.json") if not f.name.startswith(THROUGHPUT_PREFIX))


class ResultStore:
    """A folder of records, one JSON file per cell."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, encoder: str, dataset: str, protocol: str, seed: int) -> Path:
        return self.root / record_filename(encoder, dataset, protocol, seed)

    def finished(self, encoder: str, dataset: str, protocol: str, seed: int, digest: str | None = None
                 ) -> dict[str, Any] | None:
        """The cell's record if it exists, is valid, succeeded and (when ``digest`` is given) was made with the
        same resolved configuration (a rerun skips it), else None."""
        p = self.path(encoder, dataset, protocol, seed)
        if not os.path.lexists(p):
            return None
        try:
            record = read_record(p)
        except RecordError:
            return None
        if record.status != "ok" or (digest is not None and record.config_digest != digest):
            return None
        return record.to_json()

    def write(self, record: Record | Mapping[str, Any]) -> Path:
        """Write a record (typed or its JSON object) atomically to its cell's file; return the path."""
        data = record.to_json() if isinstance(record, Record) else record
        e, d, p = data["encoder"]["label"], data["dataset"]["label"], data["protocol"]["label"]
        path = self.path(e, d, p, data["seed"])
        try:
            write_json(path, data)
        except OSError as exc:  # read-only folder, full disk: one line naming the file, not a traceback
            raise WriteError(f"cannot write the record {path} ({exc.strerror or exc}); free space or make "
                             f"{self.root} writable and rerun: finished cells are kept and skipped") from None
        return path

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from load_records(self.root)


def load_records(*roots: Path | str) -> Iterator[dict[str, Any]]:
    """Every record (as its JSON object) under the given folders (recursively) or files; the first invalid
    file raises :class:`RecordError`, a missing path :class:`MissingData` (a FileNotFoundError)."""
    for root in roots:
        for f in _files(Path(root)):
            yield read_record(f).to_json()


class Scan(NamedTuple):
    """What :func:`scan_records` found: the valid records, and each file it skipped with the reason."""

    records: list[Record]
    skipped: list[tuple[Path, str]]

    def messages(self) -> list[str]:
        """What the CLI prints to stderr: ``skipped <path>: <reason>`` per skipped file, then
        ``N records read, M files skipped``."""
        lines = [f"skipped {path}: {reason}" for path, reason in self.skipped]
        return [*lines, f"{len(self.records)} records read, {len(self.skipped)} files skipped"]


def scan_records(*roots: Path | str) -> Scan:
    """Every valid record under the given folders (recursively, ``*.json``) or files, in the order
    :func:`load_records` reads them; each file that is not one (not a regular file, unreadable, not UTF-8, not
    JSON, not a valid record) is skipped and listed with the reason. A missing path raises
    :class:`MissingData` before anything is read."""
    files = [f for root in roots for f in _files(Path(root))]
    records: list[Record] = []
    skipped: list[tuple[Path, str]] = []
    for f in files:
        try:
            records.append(read_record(f))
        except InvalidRecord as exc:
            skipped.append((f, exc.reason))
    return Scan(records, skipped)


def record_files(root: Path | str) -> list[Path]:
    """The candidate evaluation-record files of one results path, in the order :func:`scan_records` reads
    them (throughput records left out); a missing path raises :class:`MissingData`."""
    return _files(Path(root))
