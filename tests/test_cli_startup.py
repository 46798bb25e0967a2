"""A responsive CLI: `repbench --version` and `--help` import neither torch nor pandas (checked with
``python -X importtime`` in a fresh interpreter, not with a timed assert); other libraries' progress bars only
when asked; Ctrl-C in pretrain says where the checkpoint is and how to resume."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "pandas", "timm", "sklearn", "transformers", "matplotlib")


def _run(*argv: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), **env_extra}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchmark", *argv], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _modules(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {m.group(1).strip() for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", proc.stderr, re.M)}


def _imported(*argv: str, **env_extra: str) -> set[str]:
    return _modules(_run(*argv, **env_extra))


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["eval", "--help"], ["throughput", "--help"],
                                  ["leaderboard", "--help"]])
def test_version_and_help_import_no_heavy_library(argv):
    modules = _imported(*argv)
    assert "benchmark.cli" in modules  # the measurement works
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


@pytest.mark.parametrize("argv", [["list"], ["list", "encoders"], ["list", "methods"], ["list", "protocol"],
                                  ["list", "encoders", "hf/*"]])
def test_list_imports_no_heavy_library(argv):
    """The built-ins register through light modules whose specs name their code lazily (benchmark.specs.lazy):
    listing them imports none of it. Installed entry-point plugins are left out (REPBENCH_LOAD_PLUGINS empty):
    a third-party plugin that imports torch at the top still loads and pays its own import, nothing more."""
    proc = _run(*argv, REPBENCH_LOAD_PLUGINS="")
    modules = _modules(proc)
    assert "benchmark.catalog" in modules  # the measurement works (import_module calls are not in -X importtime)
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    listed = proc.stdout
    if argv[1:] in ([], ["encoders"]):  # every built-in, with its options read from the code's signature
        assert "timm/<name>" in listed and "tfidf" in listed and "run:<name>" in listed and "pixels" in listed
        assert "pretrained=True" in listed and "max_features=50000" in listed
    if argv[1:] == ["methods"]:
        assert "simclr" in listed and "dino" in listed and "temperature=0.5" in listed
    if argv[1:] == ["protocol"]:
        assert "finetune" in listed and "knn" in listed and "head_lr=0.01" in listed


@pytest.mark.slow
def test_a_timm_pattern_lists_timm_models_and_may_import_timm():
    proc = _run("list", "encoders", "timm/*resnet18*", REPBENCH_LOAD_PLUGINS="")
    assert "timm/resnet18 " in proc.stdout and "timm" in _modules(proc)


@pytest.mark.slow
@pytest.mark.parametrize("asked", [False, True])
def test_third_party_progress_bars_only_when_asked(asked, tmp_path):
    """transformers' own "Loading weights" bar stays out of `repbench eval` unless REPBENCH_LIBRARY_PROGRESS=1."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=7, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=8, max_position_embeddings=16)).save_pretrained(folder)
    (tmp_path / "t.csv").write_text("text,label\n" + "".join(f"{'a' if i % 2 else 'b'} a,{i % 2}\n"
                                                            for i in range(20)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
    env.pop("REPBENCH_LIBRARY_PROGRESS", None)
    if asked:
        env["REPBENCH_LIBRARY_PROGRESS"] = "1"
    proc = subprocess.run([sys.executable, "-m", "benchmark", "eval", "-e", f"hf/{folder}", "-d",
                           f"csv:{tmp_path / 't.csv'}", "-p", "knn[k=3]", "--no-cache", "--results",
                           str(tmp_path / "res")], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert ("Loading weights" in proc.stderr) is asked


def test_pretrain_ctrl_c_says_where_the_checkpoint_is_and_how_to_resume(tmp_path, monkeypatch, capsys):
    from benchmark.cli import main
    from benchmark.methods import runs

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "pretrain", interrupted)
    argv = ["pretrain", "--method", "simclr", "--backbone", "timm/resnet18[pretrained=false,img_size=32]",
            "--dataset", "digits", "--budget", "5steps", "--out", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert f"last checkpoint is in {tmp_path / 'runs'}/simclr__" in err and "run the same command again" in err
