"""Atomic writes: file modes follow the umask, and temporary files of killed writes are cleaned up later."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from benchmark.features import FeatureCache, save_npz
from benchmark.storage.atomic import TEMP_PATTERN, atomic_path, remove_stale_temps, write_json, write_text


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_get_the_umask_mode_like_open_does(tmp_path, mask, expected):
    with umask(mask):
        write_text(tmp_path / "leaderboard.md", "x\n")
        write_json(tmp_path / "record.json", {"a": 1})
        save_npz(tmp_path / "out.npz", np.ones((2, 2)), np.arange(2))
        FeatureCache(tmp_path / "cache").put("k", np.ones((2, 2)), np.arange(2))
        with open(tmp_path / "plain.txt", "w") as fh:  # the reference: what an ordinary write gives
            fh.write("x")
    assert mode(tmp_path / "plain.txt") == expected
    for name in ("leaderboard.md", "record.json", "out.npz", "cache/k.npz"):
        assert mode(tmp_path / name) == expected, name


def test_rewriting_keeps_the_umask_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "r.json"
    with umask(0o022):
        write_json(target, {"a": 1})
        write_json(target, {"a": 2})
    assert mode(target) == 0o644 and [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_temp_files_match_the_pattern_including_mkstemp_ones(tmp_path):
    with atomic_path(tmp_path / "r.json") as tmp:
        assert tmp.parent == tmp_path and TEMP_PATTERN.match(tmp.name)
        tmp.write_text("{}")
    fd, legacy = tempfile.mkstemp(prefix=".r.json.", suffix=".tmp", dir=tmp_path)  # what older versions left
    os.close(fd)
    assert TEMP_PATTERN.match(Path(legacy).name)
    for name in ("r.json", ".r.json.tmp", "notes.tmp", ".r.json.abc.tmp", ".r.json.abcdefgh.tmp.bak"):
        assert not TEMP_PATTERN.match(name), name


def age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_remove_stale_temps_removes_only_old_atomic_temps(tmp_path):
    old = tmp_path / ".r.json.k3j9_x0a.tmp"
    old.write_text("half a record")
    age(old, 7200)
    fresh = tmp_path / ".s.json.abcd1234.tmp"  # a concurrent writer's live file
    fresh.write_text("being written")
    other = tmp_path / "notes.tmp"
    other.write_text("not ours")
    age(other, 7200)
    record = tmp_path / "r.json"
    record.write_text("{}")
    age(record, 7200)
    sub = tmp_path / "sub"
    sub.mkdir()
    nested = sub / ".t.json.abcd1234.tmp"
    nested.write_text("x")
    age(nested, 7200)
    assert remove_stale_temps(tmp_path) == [old]
    assert not old.exists() and fresh.exists() and other.exists() and record.exists() and nested.exists()
    assert remove_stale_temps(tmp_path, older_than_s=0) == [fresh]
    assert remove_stale_temps(tmp_path / "missing") == []


def test_feature_cache_removes_stale_temps_on_first_use(tmp_path):
    stale = tmp_path / ".abc.npz.a1b2c3d4.tmp"
    stale.write_bytes(b"killed mid-write")
    age(stale, 7200)
    cache = FeatureCache(tmp_path)
    assert stale.exists()  # constructing touches nothing
    assert cache.get("abc") is None
    assert not stale.exists()
    disabled_stale = tmp_path / ".x.npz.a1b2c3d4.tmp"
    disabled_stale.write_bytes(b"x")
    age(disabled_stale, 7200)
    FeatureCache(tmp_path, enabled=False).get("x")
    assert disabled_stale.exists()  # --no-cache leaves the cache folder alone
