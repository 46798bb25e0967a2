"""The Ray executor: a plan's (encoder, dataset) pairs as Ray tasks, spread over the machines of a Ray cluster.

Each pair with its protocols is one task, so the pair's features are extracted once, on one machine, by the same
:func:`~benchmark.runner.run_pair` the in-process executor calls. The driver (this process) decides before it
submits anything which cells are finished (exactly as in process: same results folder, same ``config_digest``),
and writes every record itself, atomically, as tasks return them (``ray.wait``): workers only return records, so
no shared filesystem is needed, and a rerun after the driver was killed skips every cell whose record had arrived.

Workers resolve the plan's spec strings in their own :class:`~benchmark.catalog.Catalog`, built from the plugins
installed on their machine (built-ins included): every node needs repbench and the plugins the plan names, at
the versions the driver has (the skip digest covers plugin versions). A cell that fails is an error record made
by the worker; a task that fails as a whole (its worker lost more than ``max_retries`` times, a plugin missing on
the node) gives each of its cells an error record made by the driver. Either way the other tasks go on.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from benchmark.catalog import Catalog, Resolved
from benchmark.errors import MissingDependency, OptionError
from benchmark.features import FeatureCache
from benchmark.options import Requested
from benchmark.plan import Cell, Plan
from benchmark.results import environment
from benchmark.results.build import summary_line
from benchmark.results.record import Record
from benchmark.runner import (
    PairContext,
    RunConfig,
    default_log,
    error_record,
    finished_records,
    open_store,
    pair_groups,
    run_pair,
    write_record,
)
from benchmark.runtime.devices import best_device, effective_precision

RAY_HINT = "pip install 'repbench[ray]'"
#: Ray resubmits a task whose worker process or node died this many times (application errors are never retried:
#: they are error records already).
MAX_RETRIES = 3


@dataclass(frozen=True)
class PairJob:
    """One Ray task: a pair's cells as spec requests (the worker resolves them again in its own catalog), the
    finished records among them (for the fingerprint check), and their indices in the driver's plan."""

    encoder: Requested
    dataset: Requested
    protocols: tuple[Requested, ...]
    finished: tuple[Record | None, ...]
    indices: tuple[int, ...]

    @property
    def title(self) -> str:
        return f"{self.encoder} x {self.dataset}"


def _request(resolved: Resolved) -> Requested:
    # resolved options are already typed: resolving them again gives the same options, the same label
    return Requested(resolved.name, dict(resolved.options))


def pair_jobs(plan: Plan, finished: list[Record | None]) -> list[PairJob]:
    """The tasks to submit: one per (encoder, dataset) pair with at least one unfinished cell, in plan order."""
    jobs = []
    for indices in pair_groups(plan):
        if all(finished[i] is not None for i in indices):
            continue
        first = plan.cells[indices[0]]
        jobs.append(PairJob(_request(first.encoder), _request(first.dataset),
                            tuple(_request(plan.cells[i].protocol) for i in indices),
                            tuple(finished[i] for i in indices), tuple(indices)))
    return jobs


def task_device(requested: str | None, cluster_gpus: float) -> tuple[str, int]:
    """The device every task extracts on and the GPUs it asks Ray for (Ray then sets ``CUDA_VISIBLE_DEVICES`` to
    the one it grants, which the task sees as ``cuda``). Default: CUDA when the cluster has GPUs."""
    if requested in (None, "auto"):
        return ("cuda", 1) if cluster_gpus > 0 else ("cpu", 0)
    assert requested is not None
    if requested.startswith("cuda:"):
        raise OptionError(f"--device {requested} with --executor ray: Ray gives each task its own GPU; use "
                          "--device cuda")
    if requested == "cuda":
        if cluster_gpus <= 0:
            raise OptionError("--device cuda: the Ray cluster has no GPUs (ray.cluster_resources()); add GPU "
                              "nodes or use --device cpu")
        return "cuda", 1
    return requested, 0


def node_block() -> dict[str, Any]:
    """Where a task ran, for the record's environment block (node and task ids are None outside Ray)."""
    import ray

    if not ray.is_initialized():
        return {"name": "ray", "node_id": None, "hostname": socket.gethostname(), "task_id": None, "gpu_ids": []}
    context = ray.get_runtime_context()
    return {"name": "ray", "node_id": context.get_node_id(), "hostname": socket.gethostname(),
            "task_id": context.get_task_id(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}


@cache
def _worker_catalog() -> Catalog:
    """The installed plugins of this node, loaded once per worker process."""
    return Catalog.load()


def run_pair_job(job: PairJob, config: RunConfig) -> list[tuple[int, Record]]:
    """The task body, on a worker: resolve the pair's cells, run them, return ``(plan index, record)`` pairs."""
    catalog = _worker_catalog()
    enc, dset = catalog.resolve("encoders", job.encoder), catalog.resolve("datasets", job.dataset)
    cells = [Cell(enc, dset, catalog.resolve("protocols", p)) for p in job.protocols]
    device = best_device(config.device)
    versions = {name: info.version for name, info in catalog.plugins.infos.items()}
    env = {**environment(device, versions), "executor": node_block()}
    log = default_log(config)  # Ray forwards a worker's stderr to the driver
    context = PairContext(device, effective_precision(config.precision, device), env,
                          FeatureCache(config.cache_dir, enabled=config.use_cache, log=log))
    # progress bars stay off: through Ray's log forwarding every redraw would be a line
    quiet = replace(config, quiet=True)
    return [(job.indices[pos], rec) for pos, rec in run_pair(catalog, cells, job.finished, quiet, context, log)]


def _task_error(exc: BaseException) -> BaseException:
    """The task's own exception when Ray wraps one (with Ray's text, the remote traceback, as its cause)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        cause.__cause__ = exc
        return cause
    return exc


def _connect(ray: Any, address: str | None, quiet: bool) -> bool:
    """Join the Ray instance at ``address`` (None: ``RAY_ADDRESS`` or a new local one; "auto": the running one);
    return whether this call did (and so must shut it down). A process already connected stays as it is."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, log_to_driver=not quiet,
                 logging_level=logging.WARNING if quiet else logging.INFO)
    except ConnectionError as exc:
        raise OptionError(f"--ray-address {address}: cannot reach a Ray cluster ({exc}); start one with "
                          "`ray start --head` or pass its HOST:PORT") from exc
    return True


def run_plan_ray(catalog: Catalog, plan: Plan, config: RunConfig, *, address: str | None = None,
                 log: Callable[[str], None] | None = None, max_retries: int = MAX_RETRIES,
                 num_cpus: float = 1, task: Callable[[PairJob, RunConfig], list[tuple[int, Record]]]
                 = run_pair_job) -> list[Record]:
    """Run every cell of ``plan`` as Ray tasks, one per (encoder, dataset) pair; return the records in plan
    order (finished ones read back, new ones written by this process as they arrive).

    Skips follow :func:`~benchmark.runner.run_plan`. Each task asks for ``num_cpus`` CPUs and, when CUDA is
    asked for (or ``--device`` is unset and the cluster has GPUs), one GPU; tasks are spread over the nodes.
    A task whose worker dies is resubmitted up to ``max_retries`` times. ``task`` is the task body, an importable
    function (tests wrap :func:`run_pair_job` to lose workers).
    """
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency(f"--executor ray needs the ray package: {RAY_HINT}") from exc
    log = log or default_log(config)
    store = open_store(config, log)
    started = _connect(ray, address, config.quiet)
    pending: dict[Any, PairJob] = {}
    try:
        device, gpus = task_device(config.device, ray.cluster_resources().get("GPU", 0))
        precision = effective_precision(config.precision, device)
        if precision != config.precision:
            log(f"--precision {config.precision} autocasts on CUDA only; extracting in fp32 on {device}")
        records = finished_records(catalog, plan, config, store, precision, log)
        done = sum(r is not None for r in records)
        remote = ray.remote(task).options(num_cpus=num_cpus, num_gpus=gpus, max_retries=max_retries,
                                                  retry_exceptions=False, scheduling_strategy="SPREAD")
        task_config = replace(config, device=device)
        pending = {remote.remote(job, task_config): job for job in pair_jobs(plan, records)}
        if pending:
            log(f"submitted {len(pending)} (encoder, dataset) task(s) to Ray ({gpus} GPU each on {device})")
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ref)
            for index, rec in _results(ray, ref, job, catalog, plan, config, device, precision):
                if records[index] is None:  # a finished cell rerun (other fingerprints) was counted already
                    done += 1
                records[index] = write_record(store, rec)
                log(summary_line(done, len(plan.cells), rec))
    except BaseException:
        for ref in pending:  # a killed or failing driver leaves no orphan work behind
            ray.cancel(ref)
        raise
    finally:
        if started:
            ray.shutdown()
    return [r for r in records if r is not None]


def _results(ray: Any, ref: Any, job: PairJob, catalog: Catalog, plan: Plan, config: RunConfig, device: str,
             precision: str) -> list[tuple[int, Record]]:
    """A finished task's records; when the task failed as a whole, an error record for each cell it had to run."""
    try:
        return list(ray.get(ref))
    except ray.exceptions.RayError as exc:
        error = _task_error(exc)
    env = {**environment(device, {n: i.version for n, i in catalog.plugins.infos.items()}),
           "executor": {"name": "ray", "node_id": None, "hostname": None}}
    todo = [i for i, rec in zip(job.indices, job.finished, strict=True) if rec is None]
    return [(i, error_record(catalog, plan.cells[i], config, env, error, precision)) for i in todo]
