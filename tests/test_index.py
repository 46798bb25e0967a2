"""The landing page of the published leaderboards, and the page's links."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmark.leaderboards.index import write_index
from benchmark.leaderboards.page import Section

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"


def test_index_has_a_section_per_board_with_its_summary_and_links(tmp_path):
    for name in ("methods", "offline-vision-v1"):
        if (ROOT / name / "records").is_dir():
            shutil.copytree(ROOT / name, tmp_path / name)
    (tmp_path / "not-a-board").mkdir()  # no records/: not listed
    folders = sorted(p.name for p in tmp_path.iterdir() if (p / "records").is_dir())
    assert folders, "no published board with records to index"
    page = write_index(tmp_path).read_text(encoding="utf-8")
    for name in folders:
        assert f"<h2>{name}</h2>" in page and f'href="{name}/leaderboard.md"' in page
    assert "not-a-board" not in page
    if "methods" in folders:  # a methods board is summarised by method, with the floor and the reference rows
        assert "none: random init" in page and "simclr" in page


@pytest.mark.parametrize("href", ["javascript:alert(1)", "https://evil.example/x", "../../etc/passwd",
                                  "/abs/path.html", 'a.html" onclick="x'])
def test_links_are_relative_paths_inside_the_folder_only(href):
    with pytest.raises(ValueError, match="relative paths"):
        Section("s", None, links=[("x", href)])
