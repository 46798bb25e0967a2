"""Leaderboards: validated records -> a pandas DataFrame -> tables (markdown, CSV, HTML)."""

from benchmark.leaderboards.tables import NOTE, md_escape, table, to_csv, to_frame, to_html, to_markdown

__all__ = ["NOTE", "md_escape", "table", "to_csv", "to_frame", "to_html", "to_markdown"]
