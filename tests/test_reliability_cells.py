"""Plugin code that exits or hangs, and flags that cannot work (issue 19): a failed cell naming the plugin, a
per-cell timeout, plan-time errors."""

from __future__ import annotations

import sys
import time

import pytest

from benchmark.encoders.pixels import PixelsEncoder
from benchmark.errors import OptionError
from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.runtime.cell_guard import CellTimeout, cell_timeout
from benchmark.specs import EncoderSpec
from benchmark.testing import catalog_with

import helpers


class Exiting(PixelsEncoder):
    def encode(self, batch):
        sys.exit(0)


class Hanging(PixelsEncoder):
    def encode(self, batch):
        while True:
            time.sleep(0.05)


@pytest.fixture
def catalog():
    catalog = catalog_with(("harness", helpers.make_plugin()))
    catalog.add("encoders", EncoderSpec("exiting", "image", load=Exiting), plugin="rogue-plugin")
    catalog.add("encoders", EncoderSpec("hanging", "image", load=Hanging), plugin="slow-plugin")
    return catalog


def _config(tmp_path, **kw):
    return RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True, **kw)


def test_sys_exit_in_a_plugins_encode_is_a_failed_cell_naming_the_plugin(catalog, tmp_path):
    plan = make_plan(catalog, ["exiting", "pixels"], ["tiny[n=20]"], ["centroid"])
    records = [r.to_json() for r in run_plan(catalog, plan, _config(tmp_path))]
    assert [r["status"] for r in records] == ["error", "ok"]  # the sweep went on
    error = records[0]["error"]
    assert error["type"] == "ContractError"
    assert "plugin code called sys.exit(0)" in error["message"]
    assert "encoder 'exiting' (plugin rogue-plugin)" in error["message"] and "dataset" not in error["message"]


def test_sys_exit_while_loading_is_a_failed_cell_too(catalog, tmp_path):
    def load(**options):
        raise SystemExit(3)

    catalog.add("encoders", EncoderSpec("exit-on-load", "image", load=load), plugin="rogue-plugin")
    [record] = [r.to_json() for r in run_plan(catalog, make_plan(catalog, ["exit-on-load"], ["tiny[n=20]"], ["centroid"]),
                                              _config(tmp_path))]
    assert record["status"] == "error" and "sys.exit(3)" in record["error"]["message"]
    assert "encoder 'exit-on-load' (plugin rogue-plugin)" in record["error"]["message"]


def test_a_hanging_encoder_becomes_an_error_record_under_cell_timeout(catalog, tmp_path):
    plan = make_plan(catalog, ["hanging"], ["tiny[n=20]"], ["centroid"])
    [record] = [r.to_json() for r in run_plan(catalog, plan, _config(tmp_path, cell_timeout=0.5))]
    assert record["status"] == "error" and record["error"]["type"] == "CellTimeout"
    assert "ran past --cell-timeout 0.5 s" in record["error"]["message"]
    assert record["timings"]["cell_timeout_s"] == 0.5


def test_cell_timeout_is_off_by_default_and_restores_the_alarm():
    import signal

    with cell_timeout(None, "x"):
        time.sleep(0.01)
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(CellTimeout, match="x ran past"), cell_timeout(0.05, "x"):
        time.sleep(2)
    assert signal.getsignal(signal.SIGALRM) is before and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


@pytest.mark.parametrize(("kw", "message"), [
    ({"batch_size": 0}, r"--batch-size 0: give a positive number"),
    ({"cell_timeout": -1.0}, r"--cell-timeout -1.0: give a positive number of seconds"),
])
def test_unusable_run_flags_are_plan_time_errors(tmp_path, kw, message):
    with pytest.raises(OptionError, match=message):
        _config(tmp_path, **kw)


def test_batch_size_0_on_the_command_line_is_one_error_before_any_cell(tmp_path, capsys):
    from benchmark.cli import main

    code = main(["eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--batch-size", "0",
                 "--results", str(tmp_path / "res"), "-q"])
    assert code == 2 and "--batch-size 0" in capsys.readouterr().err and not (tmp_path / "res").exists()


class Chatty(PixelsEncoder):
    def encode(self, batch):
        print("PLUGIN NOISE | not | a | row")
        return super().encode(batch)


def test_a_plugins_prints_go_to_stderr_never_into_the_table_on_stdout(catalog, tmp_path, monkeypatch, capsys):
    import benchmark.cli
    from benchmark.cli import main

    catalog.add("encoders", EncoderSpec("chatty", "image", load=Chatty), plugin="chatty-plugin")
    monkeypatch.setattr(benchmark.cli, "load_catalog", lambda: catalog)
    assert main(["eval", "-e", "chatty", "-d", "tiny[n=20]", "-p", "centroid", "--results", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "PLUGIN NOISE" not in out and "PLUGIN NOISE" in err
    assert "| chatty" in out  # the table itself is on stdout
