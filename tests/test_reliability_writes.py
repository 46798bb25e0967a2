"""Write failures (issue 19): a results folder that cannot be written is one line naming the file; a feature
cache that cannot be written is best-effort (warn and go on with the computed features)."""

from __future__ import annotations

import errno

import pytest

from benchmark.cli import main
from benchmark.errors import WriteError
from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.testing import catalog_with

import helpers


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _config(tmp_path, **kw):
    return RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", **kw)


def test_a_full_feature_cache_disk_does_not_fail_the_cell(tmp_path, monkeypatch):
    catalog = catalog_with(("harness", helpers.make_plugin()))
    monkeypatch.setattr("benchmark.features.cache.save_npz", _full)
    messages: list[str] = []
    [record] = [r.to_json() for r in run_plan(catalog, make_plan(catalog, ["pixels"], ["tiny[n=20]"], ["centroid"]),
                                              _config(tmp_path), log=messages.append)]
    assert record["status"] == "ok" and record["metrics"]["top1"] == 1.0
    assert any("feature cache: cannot write" in m and "No space left on device" in m for m in messages)


def test_a_results_folder_that_cannot_be_written_is_one_line_naming_the_file(tmp_path, monkeypatch):
    catalog = catalog_with(("harness", helpers.make_plugin()))
    monkeypatch.setattr("benchmark.results.store.write_json", _full)
    plan = make_plan(catalog, ["pixels"], ["tiny[n=20]"], ["centroid"])
    with pytest.raises(WriteError, match=r"cannot write the record .*results/.*\.json \(No space left on device\)"):
        run_plan(catalog, plan, _config(tmp_path, quiet=True))


def test_the_cli_reports_an_unwritable_results_folder_in_one_line(tmp_path, monkeypatch, capsys):
    def read_only(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("benchmark.results.store.write_json", read_only)
    code = main(["eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--results", str(tmp_path / "r"), "-q"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "cannot write the record" in err and "(Permission denied)" in err


def test_an_out_path_that_cannot_be_written_is_one_line_naming_it(tmp_path, capsys):
    import json

    from test_records import good

    (tmp_path / "r.json").write_text(json.dumps(good()))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code = main(["leaderboard", "--results", str(tmp_path / "r.json"), "--out", str(blocker / "board.md")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err
    last = err.splitlines()[-1]  # after the summary of what was read
    # refused before any work (the up-front check of --out), naming the flag and the file in the way
    assert last.startswith(f"repbench: error: --out {blocker}") and f"{blocker} is a file" in last
