"""The committed leaderboards are what their records produce: every render line of leaderboards/rebuild.sh
(`repbench leaderboard ...`, `repbench depth ...`) is run again into a temporary folder and each text file it
writes (tables in markdown, LaTeX, JSON, long CSV) must equal the committed one byte for byte. Plots and pages
are drawn again too but not compared (matplotlib's SVG output varies across versions)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from benchmark.cli import main

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"
COMPARED = (".md", ".tex", ".json", ".csv")


def render_lines() -> list[list[str]]:
    """The render commands of rebuild.sh, continuation lines joined, as argument lists (after 'repbench')."""
    text = (ROOT / "rebuild.sh").read_text(encoding="utf-8").replace("\\\n", " ")
    render = text.split("# 2. render", 1)[1]
    return [shlex.split(line)[1:] for line in render.splitlines()
            if line.startswith(("repbench leaderboard", "repbench depth"))]


def _ids(args: list[str]) -> str:
    return " ".join(a for a in args if not a.startswith("-"))[:60] + " -> " + args[args.index("--out") + 1]


LINES = render_lines()


def test_rebuild_renders_every_published_folder():
    outs = {Path(args[args.index("--out") + 1]).parts[0] for args in LINES}
    boards = {p.name for p in ROOT.iterdir() if (p / "records").is_dir()}
    assert boards and boards <= outs, f"rebuild.sh renders no board for {sorted(boards - outs)}"


@pytest.mark.slow  # draws the plots again
@pytest.mark.parametrize("args", LINES, ids=[_ids(a) for a in LINES])
def test_committed_tables_equal_what_their_records_produce(args, tmp_path, monkeypatch, capsys):
    out = args.index("--out") + 1
    target = Path(args[out])
    monkeypatch.chdir(ROOT)
    fresh = tmp_path / target
    args = [*args[:out], str(fresh), *args[out + 1:]]
    if "--plot" in args:
        plot = args.index("--plot") + 1
        args[plot] = str(tmp_path / args[plot])
    assert main(args) == 0, capsys.readouterr().err
    written = [fresh] if fresh.suffix else [p for p in fresh.rglob("*") if p.suffix in COMPARED]
    assert written
    for path in written:
        committed = ROOT / target / path.relative_to(fresh) if not fresh.suffix else ROOT / target
        assert committed.is_file(), f"{committed} is not committed: run leaderboards/rebuild.sh"
        assert path.read_text(encoding="utf-8") == committed.read_text(encoding="utf-8"), (
            f"{committed.relative_to(ROOT)} is stale: run leaderboards/rebuild.sh and commit the result")
    shutil.rmtree(tmp_path / target.parts[0], ignore_errors=True)


PAGES = sorted(p.parent.name for p in ROOT.glob("*/index.html"))


@pytest.mark.parametrize("board", PAGES)
def test_each_committed_page_says_what_it_is_when_and_with_what(board):
    """Issue 18 §5 on the published pages: a title that is not the folder's name, the records' newest time,
    versions and devices, links to the files beside it, the shared legend once."""
    import re

    page = (ROOT / board / "index.html").read_text(encoding="utf-8")
    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert title.startswith("repbench: ") and title != f"repbench leaderboard: {board}"
    assert "About these results" in page and "the newest made 20" in page and "Made with repbench" in page
    assert "Device: cpu (" in page
    if (ROOT / board / "records.csv").stat().st_size:
        assert 'href="records.csv"' in page and 'href="leaderboard.json"' in page
    assert page.count("half the width of its 95% confidence interval") <= 1
    assert "primary metric (%)" not in page  # plots name the metric


@pytest.mark.parametrize(("board", "foreign"), [("offline-text-v1", "timm/resnet18"),
                                                ("offline-text-v2", "efficientnet-lite/lite0"),
                                                ("offline-vision-v1", "all-MiniLM")])
def test_a_boards_throughput_table_lists_only_its_own_encoders(board, foreign):
    for name in ("leaderboard.md", "throughput.csv", "leaderboard.json"):
        assert foreign not in (ROOT / board / name).read_text(encoding="utf-8")
