"""Records in, validated: bad files reported by name and reason, skipped and counted; merged folders with
identical duplicates merged and conflicting ones reported; comma lists and repeated --results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_board import rec
from test_throughput import _record as throughput_record

from benchmark.cli import main
from benchmark.errors import MissingData
from benchmark.leaderboards.ingest import load_inputs, results_paths
from benchmark.results.throughput import write_throughput


def _write(folder: Path, name: str, data) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _folders(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    a, b = tmp_path / "a", tmp_path / "b"
    _write(a, "A-d1.json", rec("A", "d1", 0.90).to_json())
    _write(a, "A-d2.json", rec("A", "d2", 0.80).to_json())
    _write(b, "A-d1.json", rec("A", "d1", 0.90, created="2026-02-01T00:00:00").to_json())  # a rerun, same number
    _write(b, "A-d2.json", rec("A", "d2", 0.70, created="2026-02-01T00:00:00").to_json())  # a different number
    newer = {**rec("B", "d1", 0.5).to_json(), "schema_version": 2}
    bad = {
        "malformed.json": "{not json",
        "foreign.json": {"model_name": "x", "scores": {"test": [{"main_score": 0.8}]}},
        "newer.json": newer,
        "throughput__broken.json": {"kind": "throughput", "schema_version": 1},
    }
    for name, data in bad.items():
        _write(b, name, data)
    write_throughput(b, throughput_record("ok"))
    reasons = {"malformed.json": "is not valid JSON", "foreign.json": "is it a repbench result record?",
               "newer.json": "schema_version 2 is not supported", "throughput__broken.json": "missing field"}
    return a, b, reasons


def test_bad_files_are_skipped_by_name_and_reason_and_counted(tmp_path):
    a, b, reasons = _folders(tmp_path)
    inputs = load_inputs([a, b])
    assert {p.name: r for p, r in inputs.skipped}.keys() == reasons.keys()
    for path, reason in inputs.skipped:
        assert reasons[path.name] in reason, (path, reason)
    assert len(inputs.records) == 2 and len(inputs.throughput) == 1
    assert inputs.messages()[-1] == ("2 records and 1 throughput records read, 4 files skipped, 1 conflicting "
                                     "duplicates, 1 identical duplicates merged")


def test_conflicting_duplicates_are_reported_with_both_files_and_the_newest_is_used(tmp_path):
    a, b, _ = _folders(tmp_path)
    inputs = load_inputs([a, b])
    (conflict,) = inputs.conflicts
    assert conflict.cell == ("A", "d2", "knn", 0)
    message = conflict.message()
    assert str(a / "A-d2.json") in message and str(b / "A-d2.json") in message
    assert "top1 0.8000" in message and "top1 0.7000" in message and message.endswith(f"({b / 'A-d2.json'})")
    assert {r.dataset.label: r.value for r in inputs.records} == {"d1": 0.90, "d2": 0.70}


def test_results_paths_take_comma_lists_and_repeats(tmp_path):
    a, b, _ = _folders(tmp_path)
    assert results_paths([f"{a},{b}", str(a)]) == [a, b]
    odd = tmp_path / "x,y"
    odd.mkdir()
    assert results_paths([str(odd)]) == [odd]
    with pytest.raises(MissingData, match="does not exist"):
        load_inputs([tmp_path / "nope"])


def test_cli_merges_folders_and_prints_every_problem(capsys, tmp_path):
    a, b, reasons = _folders(tmp_path)
    assert main(["leaderboard", "--results", f"{a},{b}", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert "conflict: A x d2 x knn seed 0" in err and all(f"skipped {b / name}" in err for name in reasons)
    board = json.loads(out)
    # the throughput file was read, but times an encoder this board does not rank (issue 18 item 4)
    assert [r["label"] for r in board["tables"][0]["rows"]] == ["A"] and board["throughput"] == []
    assert main(["leaderboard", "--results", str(a), "--results", str(b), "--table", "cells"]) == 0
    assert "1 conflicting duplicates" in capsys.readouterr().err
