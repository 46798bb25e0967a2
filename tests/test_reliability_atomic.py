"""safetensors files go through the project's atomic path (issue 19): umask mode like JSON, temps the sweep
removes."""

from __future__ import annotations

import os
import time

import pytest
import torch

from benchmark.methods import checkpoint
from benchmark.methods.runs import save_weights
from benchmark.storage.atomic import write_safetensors


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return os.stat(path).st_mode & 0o777


def _aged(path, seconds: float):
    path.write_bytes(b"x" * 1000)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_weights_and_checkpoints_get_the_umask_mode_like_json(tmp_path, umask_022):
    save_weights(tmp_path / "backbone.safetensors", torch.nn.Linear(3, 2))
    target = checkpoint.save(tmp_path, "digest", {"step": 1}, {"w": torch.ones(2)})
    [tensors] = tmp_path.glob("checkpoint-*.safetensors")
    assert mode(tmp_path / "backbone.safetensors") == mode(tensors) == mode(target) == 0o644
    loaded = checkpoint.load(tmp_path)
    assert loaded is not None and loaded[1]["w"].tolist() == [1.0, 1.0]  # and it reads back


def test_a_killed_safetensors_write_leaves_nothing_the_sweep_misses(tmp_path):
    old_ours = _aged(tmp_path / ".backbone.safetensors.ab12cd34.tmp", 7200)
    old_theirs = _aged(tmp_path / ".tmpAb12Cd", 7200)  # what safetensors.save_file's own temp left
    live = _aged(tmp_path / ".tmpZz99Yy", 5)  # a concurrent writer's: young, kept
    save_weights(tmp_path / "backbone.safetensors", torch.nn.Linear(3, 2))
    assert not old_ours.exists() and not old_theirs.exists() and live.exists()
    _aged(old_theirs, 7200)
    checkpoint.save(tmp_path, "digest", {"step": 1}, {"w": torch.ones(2)})
    assert not old_theirs.exists() and live.exists()


def test_a_failed_safetensors_write_removes_its_temp_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "w.safetensors"
    write_safetensors(target, {"a": torch.zeros(2)})
    before = target.read_bytes()

    def boom(path, data):
        with open(path, "wb") as fh:
            fh.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_bytes", boom)
    with pytest.raises(OSError, match="No space"):
        write_safetensors(target, {"a": torch.ones(2)})
    monkeypatch.undo()
    assert target.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
