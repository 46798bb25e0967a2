"""The leaderboard model: a :class:`Board` of :class:`Table` s (one per protocol and modality), each of
:class:`Row` s (encoders) over :class:`Column` s (datasets) holding :class:`BoardCell` s.

:mod:`benchmark.leaderboards.board` builds it from records; :mod:`benchmark.leaderboards.render` draws it in every
output format. A board round-trips through :meth:`Board.to_json` / :meth:`Board.from_json`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class BoardCell:
    """One cell: ``value`` in percent (mean over seeds), ``half`` the CI half-width (one seed) or the standard
    deviation over seeds (``seeds`` > 1), ``status`` ``ok`` or ``error``, ``best`` when no encoder beats it."""

    value: float | None
    half: float | None = None
    seeds: int = 1
    status: str = "ok"
    best: bool = False


@dataclass
class Column:
    key: str  # the short label shown in the header
    label: str  # the dataset's full spec (name plus non-default options)
    classes: int | None = None
    n_test: int | None = None


@dataclass
class Row:
    key: str  # the encoder's short label
    label: str
    cells: dict[str, BoardCell]
    mean: float | None = None
    mean_rank: float | None = None
    borda: float | None = None
    borda_rank: int | None = None
    normalized: float | None = None
    missing: list[str] = field(default_factory=list)  # column keys it lacks (unranked rows only)


@dataclass
class Table:
    protocol: str
    modality: str
    metric: str
    columns: list[Column]
    rows: list[Row]  # ranked, best first
    unranked: list[Row]  # listed apart: they lack a column
    ranked_by: str
    floor: str  # "chance" or "baseline <label>"
    higher_is_better: bool = True

    @property
    def title(self) -> str:
        return f"{self.protocol} ({self.modality})"


@dataclass
class Board:
    tables: list[Table]
    throughput: list[dict[str, Any]] = field(default_factory=list)
    quality_vs_throughput: list[dict[str, Any]] = field(default_factory=list)
    suite: dict[str, Any] | None = None
    lacking: dict[str, list[str]] = field(default_factory=dict)  # suite mode: encoder -> "dataset x protocol"
    kinds: list[dict[str, Any]] = field(default_factory=list)  # per-task-kind means (leaderboards.kinds)

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not data["kinds"]:  # boards of one task kind stay as they were published
            del data["kinds"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Board:
        def row(r: Mapping[str, Any]) -> Row:
            return Row(**{**r, "cells": {k: BoardCell(**c) for k, c in r["cells"].items()}})

        tables = [Table(**{**t, "columns": [Column(**c) for c in t["columns"]], "rows": [row(r) for r in t["rows"]],
                           "unranked": [row(r) for r in t["unranked"]]}) for t in data["tables"]]
        return cls(**{**data, "tables": tables})
