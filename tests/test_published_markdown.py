"""Imported published numbers appear in the markdown board too (stdout and leaderboard.md), in their own
section after the measured tables, never inside them; a board of published numbers only is no "(no results)"."""

from __future__ import annotations

from test_board import rec
from test_importers import mteb_file  # noqa: F401  (a fixture)

from benchmark.cli import main
from benchmark.results.store import ResultStore


def _import(mteb_file, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "results"
    assert main(["import", str(mteb_file), "--results", str(out), "--url", "https://example.org/r"]) == 0
    capsys.readouterr()
    return out


def test_published_only_markdown_shows_them(mteb_file, tmp_path, capsys):  # noqa: F811
    results = _import(mteb_file, tmp_path, capsys)
    assert main(["leaderboard", "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "(no results)" not in out
    assert "### Published numbers (imported)" in out and "Banking77Classification" in out
    assert "80.04" in out and "https://example.org/r" in out  # 0.8004 as the peer published it, in percent


def test_leaderboard_md_has_measured_tables_then_the_published_section(mteb_file, tmp_path, capsys):  # noqa: F811
    results = _import(mteb_file, tmp_path, capsys)
    store = ResultStore(results)
    for encoder in ("A", "B"):
        store.write(rec(encoder, "d1", 0.5 if encoder == "A" else 0.7))
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "board")]) == 0
    text = (tmp_path / "board" / "leaderboard.md").read_text()
    measured, _, published = text.partition("### Published numbers (imported)")
    assert "| B " in measured and "Banking77Classification" not in measured
    assert "Banking77Classification" in published and "80.04" in published
