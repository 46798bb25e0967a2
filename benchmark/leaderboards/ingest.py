"""Records in, validated: several results folders merged into what a leaderboard may show.

Every file is validated against its schema before it counts (evaluation records by
:meth:`~benchmark.results.record.Record.from_json`, throughput records by
:meth:`~benchmark.results.throughput.ThroughputRecord.from_json`). A malformed, foreign or newer-schema file is
skipped and listed with its name and the reason; nothing is ever half-read into a table. When folders are merged,
records of the same cell and seed that agree are one record; records that disagree (another number, another
status) are a *conflict*: the newest is used and every conflict is reported with both files and both numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import MissingData
from benchmark.results.record import InvalidRecord, Record
from benchmark.results.store import cell_key, newest_per_cell, read_record, record_files
from benchmark.results.throughput import PREFIX, ThroughputRecord, read_throughput


@dataclass(frozen=True)
class Conflict:
    """Records of one cell and seed whose numbers differ: ``found`` holds (file, status, value) per record,
    newest last; the last one is used."""

    cell: tuple[str, str, str, int]
    metric: str
    found: tuple[tuple[str, str, float | None], ...]

    def message(self) -> str:
        enc, dset, proto, seed = self.cell
        shown = " vs ".join(f"{status if value is None else f'{self.metric} {value:.4f}'} ({path})"
                            for path, status, value in self.found)
        return f"conflict: {enc} x {dset} x {proto} seed {seed}: {shown}; using the newest ({self.found[-1][0]})"


@dataclass
class Inputs:
    """What :func:`load_inputs` read: valid records (one per cell and seed), valid throughput records, every
    skipped file with its reason, the conflicts, and how many agreeing duplicates were merged."""

    records: list[Record] = field(default_factory=list)
    throughput: list[ThroughputRecord] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    duplicates: int = 0

    def messages(self) -> list[str]:
        """One line per skipped file and conflict, then the counts: what the CLI prints to stderr."""
        lines = [f"skipped {path}: {reason}" for path, reason in self.skipped]
        lines += [c.message() for c in self.conflicts]
        lines.append(f"{len(self.records)} records and {len(self.throughput)} throughput records read, "
                     f"{len(self.skipped)} files skipped, {len(self.conflicts)} conflicting duplicates, "
                     f"{self.duplicates} identical duplicates merged")
        return lines


def results_paths(values: Iterable[str]) -> list[Path]:
    """``--results`` values as paths: each may be a comma-separated list, unless the whole value names an
    existing path (a folder whose name has a comma). Repeats are dropped."""
    out: list[Path] = []
    for value in values:
        parts = [value] if Path(value).exists() else [p.strip() for p in value.split(",") if p.strip()]
        for part in parts:
            if Path(part) not in out:
                out.append(Path(part))
    return out


def _throughput_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return [root] if root.name.startswith(PREFIX) else []
    return sorted(root.rglob(f"{PREFIX}*.json"))


def _same(a: Record, b: Record) -> bool:
    def close(x: object, y: object) -> bool:
        if isinstance(x, (int, float)) and isinstance(y, (int, float)):
            return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
        return x == y

    return a.status == b.status and close(a.value, b.value) and all(close(x, y) for x, y in zip(a.ci, b.ci, strict=True))


def _merge(found: list[tuple[Path, Record]], inputs: Inputs) -> None:
    """One record per cell and seed (the newest); disagreeing ones become conflicts."""
    groups: dict[tuple[str, str, str, int], list[tuple[Path, Record]]] = {}
    for path, rec in found:
        groups.setdefault(cell_key(rec), []).append((path, rec))
    for key, group in groups.items():
        group.sort(key=lambda pr: str(pr[1].created_at or ""))
        [newest] = newest_per_cell(rec for _, rec in group)
        inputs.records.append(newest)
        if len(group) == 1:
            continue
        if all(_same(rec, newest) for _, rec in group):
            inputs.duplicates += len(group) - 1
            continue
        inputs.conflicts.append(Conflict(key, newest.metric, tuple(
            (str(path), rec.status, rec.value if isinstance(rec.value, (int, float)) else None)
            for path, rec in group)))


def load_inputs(roots: Sequence[Path | str]) -> Inputs:
    """Read and validate every evaluation and throughput record under ``roots`` (folders, recursively, or
    files). A missing root raises :class:`MissingData` before anything is read; a bad file never raises."""
    paths = [Path(r) for r in roots]
    for path in paths:
        if not path.exists():
            raise MissingData(f"results path {path} does not exist")
    inputs = Inputs()
    found: list[tuple[Path, Record]] = []
    for root in paths:
        for f in record_files(root):
            if f.name.startswith(PREFIX):  # a file given by name
                continue
            try:
                found.append((f, read_record(f)))
            except InvalidRecord as exc:
                inputs.skipped.append((f, exc.reason))
        for f in _throughput_files(root):
            try:
                inputs.throughput.append(read_throughput(f))
            except InvalidRecord as exc:
                inputs.skipped.append((f, exc.reason))
    _merge(found, inputs)
    return inputs
