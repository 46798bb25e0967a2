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
        assert f'href="{name}/leaderboard.md"' in page
    # each section is titled as its board's page is, with its folder; the links say what each file is
    if "offline-vision-v1" in folders:
        assert "<h2>suite offline-vision-v1 (version 1) — offline-vision-v1/</h2>" in page
        assert "the board&#x27;s page (index.html)" in page or "the board's page (index.html)" in page
    if "methods" in folders:
        assert "<h2>pretraining methods — methods/</h2>" in page and "methods table (methods.md)" in page
    assert "not-a-board" not in page
    if "methods" in folders:  # a methods board is summarised by method, with the floor and the reference rows
        assert "none: random init" in page and "simclr" in page


@pytest.mark.parametrize("href", ["javascript:alert(1)", "https://evil.example/x", "../../etc/passwd",
                                  "/abs/path.html", 'a.html" onclick="x'])
def test_links_are_relative_paths_inside_the_folder_only(href):
    with pytest.raises(ValueError, match="relative paths"):
        Section("s", None, links=[("x", href)])


def test_a_broken_leaderboard_json_only_loses_the_suite_title(tmp_path):
    if not (ROOT / "offline-vision-v1" / "records").is_dir():
        pytest.skip("no published offline-vision-v1 board to copy")
    shutil.copytree(ROOT / "offline-vision-v1", tmp_path / "offline-vision-v1")
    (tmp_path / "offline-vision-v1" / "leaderboard.json").write_text("{not json", encoding="utf-8")
    page = write_index(tmp_path).read_text(encoding="utf-8")
    assert "<h2>knn, linear, fewshot on image — offline-vision-v1/</h2>" in page  # what its records measure
