"""Leaderboards: validated records -> a pandas DataFrame -> tables (markdown, CSV, HTML)."""

from benchmark.leaderboards.tables import table, to_csv, to_frame, to_html, to_markdown

__all__ = ["table", "to_csv", "to_frame", "to_html", "to_markdown"]
