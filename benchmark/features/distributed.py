"""Data-parallel extraction under torchrun: the ranks share each split's extraction, rank 0 runs the protocols once
on the gathered features (never per-rank scores averaged).

How one split is shared (:func:`local_rows`, :func:`gather_rows`):

- the samples are taken in extraction order (length-sorted for a :class:`~benchmark.specs.Sortable` encoder, so
  batches keep similar lengths together) and that order is dealt out as ``DistributedSampler(shuffle=False)``
  does (:func:`shard`): padded to a multiple of the world size by repeating its start, rank ``r`` taking
  positions ``r, r + W, r + 2W, ...``; every rank encodes the same number of samples;
- each rank extracts its share with :func:`~benchmark.features.extract.extract` (its checks, its loader workers)
  and keeps the sample index of every row;
- the ranks agree on success before any data moves: when one rank fails (a broken batch, a dataset it cannot
  load), every rank raises instead of hanging, rank 0 with that rank's message (:class:`RankFailure`);
- indices and features are all-gathered and the rows written by index (:func:`assemble`), which raises
  ContractError for a row no rank filled. A padded sample is encoded twice (on two ranks) and written twice:
  the same sample's features, up to the float rounding of a different batch.

The fields of a task kind (a retrieval task's queries and corpus, a pair task's sentences) are shared the same
way: the :class:`Request` names the field and its role, and every rank encodes its share with the encoder of
that role.

Who does what (:func:`leading`, :func:`follow`): rank 0 runs the plan as one process would. When its
:class:`~benchmark.features.task.HarnessTask` needs a split (or field) the feature cache lacks (rank 0 alone reads and
writes the cache and the records, so hits are decided once and ranks need no shared filesystem), it broadcasts
a :class:`Request` naming the pair and the split (:func:`extract_shared`) and every rank encodes its share. The
other ranks only serve requests: they load the pair named, write nothing, run no protocol (a finetune, which needs
the encoder, runs on rank 0 alone), and wait for the next request on a gloo group with a long timeout (rank 0 may
fine-tune for hours in between) until rank 0 says the plan is done.
"""

from __future__ import annotations

import contextlib
import datetime
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from benchmark.errors import ContractError
from benchmark.features.extract import extract, extraction_order
from benchmark.runtime import distributed as dist
from benchmark.specs import Dataset, Encoder

#: How long the other ranks wait for rank 0's next request (rank 0 runs protocols, a finetune too, meanwhile).
WAIT = datetime.timedelta(days=7)

_control: Any = None  # the gloo group of requests and agreements while a plan runs (None: the default group)
_session = False  # whether this process is in a leading() or follow() session


class RankFailure(ContractError):
    """Another rank could not extract its share (its message is quoted); nothing was gathered."""


@dataclass(frozen=True)
class Request:
    """What rank 0 asks of every rank: extract ``split`` of the plan's pair (``encoder``, ``dataset``) labels.

    The fingerprints let each rank check it loaded the same weights and data; ``n``, ``batch_size`` and
    ``precision`` make every rank shard and encode alike."""

    encoder: str
    dataset: str
    split: str
    n: int
    batch_size: int
    precision: str
    encoder_fingerprint: str
    dataset_fingerprint: str
    #: a field of a task kind (``split`` names it: ``queries``, ``corpus``, ``sentence1``) instead of a split,
    #: encoded in ``role`` (:func:`benchmark.features.fields.role_encoder`)
    field: bool = False
    role: str | None = None


def shard(n: int, rank: int, world: int) -> np.ndarray:
    """The positions ``0 .. n-1`` that ``rank`` of ``world`` takes: ``DistributedSampler(shuffle=False)``'s
    indices (padded by repeating the start up to a multiple of ``world``; every rank gets ``ceil(n / world)``)."""
    if n == 0:
        return np.zeros(0, np.int64)
    total = -(-n // world) * world
    return np.resize(np.arange(n, dtype=np.int64), total)[rank::world]


def share(n: int) -> int:
    """How many of ``n`` samples this process encodes: ``ceil(n / world)`` in a session, else ``n``."""
    return -(-n // dist.world_size()) if _session else n


def assemble(n: int, indices: np.ndarray, features: np.ndarray | Sequence[np.ndarray], name: str) -> np.ndarray:
    """The (n, D) float32 features with row ``indices[i]`` = ``features[i]``; ContractError when an index is out of
    range or a row is left unfilled (nothing half-filled is returned). ``features`` may be a list of row blocks
    (each rank's share, in rank order), read as their concatenation without building it."""
    indices = np.asarray(indices, dtype=np.int64)
    blocks = [features] if isinstance(features, np.ndarray) else list(features)
    if len(indices) != sum(len(b) for b in blocks):
        raise ContractError(f"data-parallel extraction of {name!r} gathered {sum(len(b) for b in blocks)} feature "
                            f"rows but "
                            f"{len(indices)} sample indices; rerun on one process and report this")
    outside = indices[(indices < 0) | (indices >= n)]
    if outside.size:
        raise ContractError(f"data-parallel extraction of {name!r} gathered sample index {int(outside[0])}, "
                            f"outside 0..{n - 1}; rerun on one process and report this")
    width = blocks[0].shape[1] if blocks and blocks[0].ndim == 2 else 0
    out = np.zeros((n, width), np.float32)
    filled = np.zeros(n, bool)
    at = 0
    for block in blocks:  # written block by block: no concatenated copy of every rank's rows
        out[indices[at:at + len(block)]] = block
        at += len(block)
    filled[indices] = True
    if not filled.all():
        missing = np.flatnonzero(~filled)
        raise ContractError(f"data-parallel extraction of {name!r} filled {n - len(missing)} of {n} rows: no rank "
                            f"returned sample(s) {missing[:5].tolist()}{' ...' if len(missing) > 5 else ''}; "
                            "rerun on one process and report this")
    return out


class _Rows(Sequence[Any]):
    """The samples at ``indices`` (a lazy view: loader workers pickle the samples and the indices, no copies)."""

    def __init__(self, samples: Sequence[Any], indices: np.ndarray) -> None:
        self.samples, self.indices = samples, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: Any) -> Any:
        return self.samples[int(self.indices[i])]


def local_rows(encoder: Encoder, samples: Sequence[Any], req: Request, *, device: str, workers: int,
               progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """This rank's share of ``samples``: (sample indices, their float32 features), in extraction order."""
    mine = extraction_order(encoder, samples)[shard(len(samples), dist.rank(), dist.world_size())]
    feats = extract(encoder, _Rows(samples, mine), device=device, batch_size=req.batch_size,
                    precision=req.precision, progress=progress, sort=False, name=req.encoder, workers=workers)
    return mine, feats


def gather_rows(n: int, local: Callable[[], tuple[np.ndarray, np.ndarray]], name: str) -> np.ndarray:
    """Every rank calls this together: ``local()`` gives this rank's (indices, features); returns all ``n`` rows
    in sample order on every rank. A rank whose ``local()`` raised re-raises it; the others raise
    :class:`RankFailure` quoting it; ranks whose shares differ in shape raise ContractError. Nothing is gathered
    then, so no rank waits forever on a collective another rank never reaches."""
    own: Exception | None = None
    try:
        indices, feats = local()
        status: tuple[int, int] | str = (int(feats.shape[0]), int(feats.shape[1]))
    except Exception as exc:
        own, status = exc, f"{type(exc).__name__}: {exc}"
    statuses = _all_objects(status)
    if own is not None:
        raise own
    failed = [(r, s) for r, s in enumerate(statuses) if isinstance(s, str)]
    if failed:
        r, message = failed[0]
        raise RankFailure(f"data-parallel extraction of {name!r}: rank {r} failed: {message}")
    if len(set(statuses)) > 1:
        raise ContractError(f"data-parallel extraction of {name!r}: the ranks' shares differ in (rows, width): "
                            f"{statuses}; the encoder must return the same width on every rank")
    return assemble(n, np.concatenate(_all_gather(indices)), _all_gather(feats), name)


def extract_shared(req: Request, encoder: Encoder, samples: Sequence[Any], *, device: str, workers: int,
                   progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Rank 0 in a :func:`leading` session: ask every rank to extract its share of ``req``'s split (they are
    waiting in :func:`follow`), extract its own, return all rows in sample order."""
    _exchange(req)
    return gather_rows(req.n, lambda: local_rows(encoder, samples, req, device=device, workers=workers,
                                                 progress=progress), req.encoder)


def leading() -> bool:
    """Whether this process is rank 0 of a running data-parallel plan (HarnessTask then calls extract_shared)."""
    return _session and dist.is_main()


@contextlib.contextmanager
def lead() -> Iterator[None]:
    """Rank 0's side of a plan under torchrun: while the block runs, every extraction is shared; at its end (or
    on an error) the other ranks are told the plan is done."""
    _open()
    try:
        yield
    finally:
        try:
            _exchange(None)
        finally:
            _close()


def follow(load: Callable[[str, str], tuple[Dataset, Encoder]], *, device: str, workers: int) -> int:
    """The other ranks' side: serve rank 0's requests until it is done; returns how many splits were served.

    ``load(encoder_label, dataset_label)`` loads a pair of the plan (dataset, encoder on ``device``); the pair
    last loaded is kept for the next request (the plan asks for a pair's splits one after another)."""
    from benchmark.features.contracts import checked_split

    _open()
    served = 0
    pair: tuple[tuple[str, str], Dataset, Encoder] | None = None
    try:
        while (req := _exchange(None)) is not None:
            def local(req: Request = req) -> tuple[np.ndarray, np.ndarray]:
                nonlocal pair
                if pair is None or pair[0] != (req.encoder, req.dataset):
                    pair = None  # free the previous pair's model before loading the next
                    pair = ((req.encoder, req.dataset), *load(req.encoder, req.dataset))
                _, dataset, encoder = pair
                _check_same(req, dataset, encoder)
                if req.field:
                    encoder, samples = field_share(dataset, encoder, req, device)
                else:
                    samples = checked_split(dataset, req.split, req.dataset).samples
                return local_rows(encoder, samples, req, device=device, workers=workers)

            try:
                gather_rows(req.n, local, req.encoder)
            except Exception as exc:  # every rank raised it alike: rank 0 records it, this rank serves the next
                print(f"repbench rank {dist.rank()}: {type(exc).__name__}: {exc}", file=sys.stderr)
            served += 1
    finally:
        _close()
    return served


def field_share(dataset: Any, encoder: Encoder, req: Request, device: str) -> tuple[Encoder, Sequence[Any]]:
    """The encoder (in the request's role) and the samples of the field ``req`` names."""
    from benchmark.features.fields import role_encoder

    known = dataset.fields() if hasattr(dataset, "fields") else {}
    if req.split not in known:
        raise ContractError(f"rank {dist.rank()}: dataset {req.dataset!r} has no field {req.split!r}")
    return role_encoder(encoder, req.role, device)[0], known[req.split].samples


def _check_same(req: Request, dataset: Dataset, encoder: Encoder) -> None:
    for what, mine, theirs, fix in (("encoder", encoder.fingerprint, req.encoder_fingerprint, "weights"),
                                    ("dataset", dataset.fingerprint, req.dataset_fingerprint, "data")):
        if mine != theirs:
            raise ContractError(f"rank {dist.rank()} loaded {what} {getattr(req, what)!r} with fingerprint {mine} "
                                f"but rank 0 has {theirs}; give every node the same {fix}")


def _open() -> None:
    """Join the control group (a collective: every rank calls it at the start of its side of the plan)."""
    global _control, _session
    _control = torch.distributed.new_group(backend="gloo", timeout=WAIT) if dist.initialized() else None
    _session = True


def _close() -> None:
    global _control, _session
    if _control is not None:
        torch.distributed.destroy_process_group(_control)
    _control, _session = None, False


def _exchange(obj: Request | None) -> Request | None:
    """Rank 0's ``obj`` on every rank (over the control group)."""
    box = [obj]
    torch.distributed.broadcast_object_list(box, src=0, group=_control)
    return box[0]


def _all_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` in rank order (over the control group)."""
    out: list[Any] = [None] * dist.world_size()
    torch.distributed.all_gather_object(out, obj, group=_control)
    return out


def _all_gather(array: np.ndarray) -> list[np.ndarray]:
    """Every rank's ``array`` (same shape on every rank) in rank order, through the default group (on this rank's
    GPU under NCCL); each part is brought back to the host (and freed on the GPU) in turn."""
    nccl = torch.distributed.get_backend() == "nccl"
    t = torch.from_numpy(np.ascontiguousarray(array))
    if nccl:
        t = t.to(torch.device("cuda", torch.cuda.current_device()))
    parts = [torch.empty_like(t) for _ in range(dist.world_size())]
    torch.distributed.all_gather(parts, t)
    out = []
    for r in range(len(parts)):
        out.append(parts[r].cpu().numpy())
        parts[r] = t  # drop the device copy of this part (t itself stays alive until the end)
    return out
