"""The environment block of every record: what produced it (versions, device, git sha)."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from benchmark.plugins import dist_version


@cache
def git_sha() -> str | None:
    """The commit of the repbench source tree when it is a git checkout (an editable install), else None."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment(device: str, plugin_versions: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """What produced a record: versions of repbench and its core libraries, plugins, the device, the git sha."""

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = torch.cuda.get_device_name(torch.device(device))
    else:
        device_name = f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"
    return {
        "repbench": dist_version("repbench"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": dist_version("timm"),
        "numpy": dist_version("numpy"),
        "scikit-learn": dist_version("scikit-learn"),
        "platform": platform.platform(),
        "device": device,
        "device_name": device_name,
        "cuda": torch.version.cuda if device.startswith("cuda") else None,
        "git_sha": git_sha(),
        "plugins": dict(plugin_versions or {}),
    }
