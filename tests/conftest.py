"""Shared fixtures. Tests never touch the network or the user's caches."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Keep feature caches and downloaded data out of the home folder, and plugin allow/deny lists unset."""
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("REPBENCH_CACHE_DIR", str(base / "feature-cache"))
    monkeypatch.setenv("REPBENCH_DATA", str(base / "data"))
    monkeypatch.delenv("REPBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("REPBENCH_DISABLE_PLUGINS", raising=False)


def _missing_distributions(names) -> list[str]:
    from importlib.metadata import PackageNotFoundError, distribution

    missing = []
    for name in names:
        try:
            distribution(name)
        except PackageNotFoundError:
            missing.append(name)
    return missing


def pytest_collection_modifyitems(config, items):
    """Tests marked ``offline_text`` skip, saying how to install the data, where its packages are missing (unless
    ``REPBENCH_REQUIRE_DATA=1``, as CI sets: there a missing package fails those tests); tests marked ``gpu`` skip,
    saying why, where torch sees no CUDA GPU."""
    from benchmark.datasets.tables import OFFLINE_PACKAGES  # the distributions and their install commands

    text = [item for item in items if item.get_closest_marker("offline_text")]
    missing = _missing_distributions(OFFLINE_PACKAGES) if text else []
    if missing and os.environ.get("REPBENCH_REQUIRE_DATA") != "1":
        skip_text = pytest.mark.skip(reason=f"needs the offline text data ({', '.join(missing)} not installed): "
                                            + "; ".join(OFFLINE_PACKAGES[name] for name in missing))
        for item in text:
            item.add_marker(skip_text)
    gpu = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marker gpu): run `tox -e gpu` or scripts/gpu_check.sh on a "
                                   "GPU machine")
    for item in gpu:
        item.add_marker(skip)
