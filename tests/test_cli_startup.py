"""`repbench --version` and `--help` answer at once: they import neither torch nor pandas (checked with
``python -X importtime`` in a fresh interpreter, not with a timed assert)."""

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
