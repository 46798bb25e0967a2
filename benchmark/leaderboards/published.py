"""Measured and published numbers kept apart: a published number (imported with ``repbench import``) never
enters a measured table, an aggregate or a rank silently.

:func:`source_frame` is :func:`~benchmark.leaderboards.tables.to_frame` with two more columns, ``source``
(``measured`` / ``published``) and ``provenance`` (where a published number came from: its URL, else its file),
built per source so the newest-record deduplication never lets a published record replace a measured one.
:func:`split_frame` splits such a frame in two; tables and aggregates are built from the measured part, and the
published part is shown in its own section (or as rows with a ``published`` marker, :func:`mark_published`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from benchmark.leaderboards.tables import COLUMNS, to_frame
from benchmark.results.record import Record
from benchmark.results.throughput import ThroughputRecord

SOURCE_COLUMNS = [*COLUMNS, "source", "provenance"]


def origin(record: Record | ThroughputRecord) -> str:
    """``"published"`` or ``"measured"`` for an evaluation or throughput record."""
    if isinstance(record, Record):
        return record.origin
    return "published" if record.extra.get("source") == "published" else "measured"


def split_records(records: Iterable[Any]) -> tuple[list[Any], list[Any]]:
    """``(measured, published)`` records, each list in the input order."""
    measured: list[Any] = []
    published: list[Any] = []
    for r in records:
        (published if origin(r) == "published" else measured).append(r)
    return measured, published


def _where(record: Record) -> str:
    prov = record.provenance or {}
    return str(prov.get("url") or prov.get("file") or "")


def source_frame(records: Iterable[Record]) -> pd.DataFrame:
    """The long-form frame of :func:`to_frame` plus ``source`` and ``provenance``; measured rows first."""
    measured, published = split_records(records)
    parts = []
    for source, recs in (("measured", measured), ("published", published)):
        df = to_frame(recs)
        where = {r.id: _where(r) for r in recs}
        parts.append(df.assign(source=source, provenance=df["id"].map(where).fillna("") if len(df) else ""))
    out = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame(columns=SOURCE_COLUMNS)
    return out[SOURCE_COLUMNS]


def split_frame(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(measured, published)`` rows of a :func:`source_frame` (or any frame with a ``source`` column), each
    with a fresh index. A frame without ``source`` is refused: it cannot tell the two apart."""
    if "source" not in df.columns:
        raise ValueError("the frame has no 'source' column; build it with source_frame(records)")
    published = df["source"] == "published"
    return df[~published].reset_index(drop=True), df[published].reset_index(drop=True)


def mark_published(table: pd.DataFrame, published_encoders: Iterable[str], column: str = "published") -> pd.DataFrame:
    """A display table (one row per encoder, encoders as the index) with a ``published`` column first: ``yes``
    for the given encoders, ``""`` otherwise; for a table that has to show both kinds of rows together."""
    names = set(published_encoders)
    marker = ["yes" if idx in names else "" for idx in table.index]
    return table.assign(**{column: marker})[[column, *[c for c in table.columns if c != column]]]
