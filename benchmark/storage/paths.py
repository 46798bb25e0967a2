"""Where repbench keeps things on disk: one resolver for the cache root, the feature cache and downloaded data.

Both honour ``XDG_CACHE_HOME`` (default ``~/.cache``): features go to ``$REPBENCH_CACHE_DIR`` or
``<cache>/repbench/features``, downloaded datasets to ``$REPBENCH_DATA`` or ``<cache>/repbench/data``. Nothing
is created here.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "REPBENCH_CACHE_DIR"
DATA_ENV = "REPBENCH_DATA"


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/repbench`` (default ``~/.cache/repbench``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "repbench"


def default_cache_dir() -> Path:
    """The feature cache: ``$REPBENCH_CACHE_DIR``, else ``<cache root>/features``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else cache_root() / "features"


def data_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """Downloaded datasets: ``root`` if given (non-empty), else ``$REPBENCH_DATA``, else ``<cache root>/data``."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else cache_root() / "data"
