"""A Ray instance for tests: loopback only, a short temp dir, this checkout importable by the workers."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import benchmark

#: Ray keeps the newest instance's address in $RAY_TMPDIR/ray (never /tmp/ray, shared by the whole machine).
VARIABLES = ("RAY_TMPDIR", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "PYTHONPATH")

# per node: records are a few KB, and /dev/shm is shared with everything else on the machine
OBJECT_STORE = 80 * 1024**2


def import_ray() -> Any:
    return pytest.importorskip("ray", reason="the Ray executor tests need ray: pip install 'repbench[ray]'")


@contextmanager
def ray_environment() -> Iterator[str]:
    """Set up the environment a test Ray instance starts in; yield its temp dir (removed afterwards).

    - Unix socket paths are limited to 107 bytes and Ray nests its sockets deep in its temp dir, so the dir is a
      short one directly under /tmp, never pytest's long tmp_path.
    - Ray rewrites a 127.0.0.1 address to the machine's outward IP when connecting, unless cluster mode is off
      (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which also binds every node to loopback): without it, joining the
      simulated cluster tries the outward address, where nothing listens, and hangs.
    - Workers import repbench from this checkout (PYTHONPATH), not from whatever else is installed.
    """
    ray = import_ray()
    from ray._private import ray_constants

    saved = {name: os.environ.get(name) for name in VARIABLES}
    saved_cluster = ray_constants.ENABLE_RAY_CLUSTER
    root = tempfile.mkdtemp(prefix="rbray-", dir="/tmp")
    os.makedirs(os.path.join(root, "ray"))
    checkout = str(Path(benchmark.__file__).resolve().parents[1])
    here = str(Path(__file__).resolve().parent)  # this module, for task bodies defined here
    os.environ.update(RAY_TMPDIR=root, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",
                      PYTHONPATH=os.pathsep.join(p for p in (checkout, here, saved["PYTHONPATH"]) if p))
    ray_constants.ENABLE_RAY_CLUSTER = False  # read at call time; the variable only reaches child processes
    try:
        yield root
    finally:
        if ray.is_initialized():
            ray.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = saved_cluster
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)


def comparable(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two runs of the same cell: when, how long, where."""
    return {k: v for k, v in record.items() if k not in ("created_at", "timings", "environment")}


def losing_worker(job: Any, config: Any) -> Any:
    """The Ray executor's task body, but the worker process dies (``os._exit``, as when a node is lost) on the
    first attempt of a pair whose dataset has ``seed=1``, and on every attempt when it has ``seed=2``."""
    from benchmark.runner_ray import run_pair_job

    seed = job.dataset.options.get("seed")
    marker = Path(os.environ["RAY_TMPDIR"]) / f"lost-{job.dataset}"
    if seed == 2 or (seed == 1 and not marker.exists()):
        marker.touch()
        os._exit(1)
    return run_pair_job(job, config)
