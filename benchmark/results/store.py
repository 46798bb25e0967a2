"""The results store: a folder of records, one JSON file per cell (encoder x dataset x protocol x seed).

A failed cell is a record with ``status: "error"`` and ``error`` set; a rerun retries it, and skips cells whose
record is ``"ok"``. Records are written atomically.

Reading never opens anything but a regular file (a FIFO named ``x.json`` would block a reader forever), decodes
UTF-8 and validates with :meth:`Record.from_json`. :func:`load_records` is strict (the first bad file raises);
:func:`scan_records` reads every good record and lists each bad file with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from benchmark.errors import MissingData, RecordError, WriteError
from benchmark.results.files import read_json, slug
from benchmark.results.record import InvalidRecord, Record, cell_id
from benchmark.results.throughput import PREFIX as THROUGHPUT_PREFIX
from benchmark.storage.atomic import write_json


def record_filename(encoder: str, dataset: str, protocol: str, seed: int) -> str:
    """The file name of a cell's record: readable slugs of the labels, the seed and the cell id."""
    cid = cell_id(encoder, dataset, protocol, seed)
    return f"{slug(encoder)}__{slug(dataset)}__{slug(protocol)}__s{seed}__{cid}.json"


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
                 ) -> Record | None:
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
        return record

    def write(self, record: Record) -> Path:
        """Write a record atomically to its cell's file (its JSON object, keys in the order it was built or read
        with); return the path."""
        data = record.to_json()
        e, d, p = data["encoder"]["label"], data["dataset"]["label"], data["protocol"]["label"]
        path = self.path(e, d, p, data["seed"])
        try:
            write_json(path, data)
        except OSError as exc:  # read-only folder, full disk: one line naming the file, not a traceback
            raise WriteError(f"cannot write the record {path} ({exc.strerror or exc}); free space or make "
                             f"{self.root} writable and rerun: finished cells are kept and skipped") from None
        return path

    def __iter__(self) -> Iterator[Record]:
        yield from load_records(self.root)


def load_records(*roots: Path | str) -> Iterator[Record]:
    """Every record under the given folders (recursively) or files, validated once as it is read; the first
    invalid file raises :class:`RecordError`, a missing path :class:`MissingData` (a FileNotFoundError)."""
    for root in roots:
        for f in _files(Path(root)):
            yield read_record(f)


def cell_key(record: Record) -> tuple[str, str, str, int]:
    """What identifies a record's cell and seed in tables: the encoder, dataset and protocol labels, the seed."""
    return record.encoder.display, record.dataset.display, record.protocol.display, record.seed


def newest_per_cell(records: Iterable[Record]) -> list[Record]:
    """The newest record of each cell and seed (by ``created_at``; of equal ones the later in ``records``), in
    ``created_at`` order: the one de-duplication every table and merge uses (reruns overwrite their file, but
    folders can be merged)."""
    ordered = sorted(records, key=lambda r: str(r.created_at or ""))
    last = {cell_key(r): i for i, r in enumerate(ordered)}
    return [r for i, r in enumerate(ordered) if last[cell_key(r)] == i]


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
