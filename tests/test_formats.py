"""One leaderboard model: one de-duplication of records, output formats in one registry."""

from __future__ import annotations

import json

import pytest
from test_board import rec

from benchmark.cli import main
from benchmark.errors import OptionError
from benchmark.leaderboards import tables
from benchmark.leaderboards.board import cells_frame
from benchmark.leaderboards.formats import FORMATS, Source, all_formats, render
from benchmark.leaderboards.ingest import load_inputs
from benchmark.results.store import newest_per_cell


def test_newest_record_per_cell_and_seed_is_one_rule_everywhere(tmp_path):
    old = rec("a", "digits", 0.5, created="2026-01-01T00:00:00")
    new = rec("a", "digits", 0.7, created="2026-02-01T00:00:00")
    tie = rec("a", "digits", 0.6, created="2026-02-01T00:00:00")  # same time as `new`, later in the input
    other_seed = rec("a", "digits", 0.9, seed=1)
    assert newest_per_cell([new, old, other_seed]) == [other_seed, new]
    assert newest_per_cell([new, tie]) == [tie]
    records = [new, old, other_seed]
    assert sorted(tables.to_frame(records)["value"]) == [0.7, 0.9]
    assert sorted(cells_frame(records)["value"]) == [0.7, 0.9]
    for i, r in enumerate(records):
        (tmp_path / f"r{i}.json").write_text(json.dumps({**r.to_json(), "id": f"r{i}"}))
    assert sorted(r.value for r in load_inputs([tmp_path]).records) == [0.7, 0.9]


def test_every_table_kind_renders_every_format_it_lists():
    source = Source([rec("a", "digits", 0.5), rec("b", "digits", 0.7)])
    for table, formats in FORMATS.items():
        for fmt in formats:
            if table == "profile":
                continue  # needs a profile's cells (tests/test_profile.py)
            assert render(table, fmt, source).strip(), (table, fmt)
    assert set(all_formats()) == {"markdown", "csv", "latex", "json", "html"}


def test_a_format_a_table_lacks_names_the_tables_that_have_it():
    with pytest.raises(OptionError, match=r"--table board renders as markdown, csv, latex, json; --format html is "
                                          r"for --table cells"):
        render("board", "html", Source([]))


def test_a_new_format_is_one_entry(capsys, tmp_path, monkeypatch):
    (tmp_path / "r.json").write_text(json.dumps(rec("a", "digits", 0.5).to_json()))
    monkeypatch.setitem(FORMATS["board"], "count", lambda src: f"{len(src.records)} record(s)")
    assert main(["leaderboard", "--results", str(tmp_path), "--format", "count"]) == 0
    assert capsys.readouterr().out == "1 record(s)\n"
