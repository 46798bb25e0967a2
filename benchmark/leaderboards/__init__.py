"""Leaderboards: validated records -> pandas DataFrames -> tables (markdown, CSV, LaTeX, JSON, HTML).

The names below load lazily, so the built-in suites plugin (:mod:`benchmark.leaderboards.builtin_suites`) can
live here without every command importing pandas.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NOTE", "md_escape", "table", "to_csv", "to_frame", "to_html", "cells_markdown"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from benchmark.leaderboards import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
