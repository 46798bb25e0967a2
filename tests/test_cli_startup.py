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


def _imported(*argv: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "benchmark", *argv], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {m.group(1).strip() for m in re.finditer(r"^import time:.*\|\s*(\S+)\s*$", proc.stderr, re.M)}


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["eval", "--help"], ["throughput", "--help"],
                                  ["leaderboard", "--help"]])
def test_version_and_help_import_no_heavy_library(argv):
    modules = _imported(*argv)
    assert "benchmark.cli" in modules  # the measurement works
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


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
