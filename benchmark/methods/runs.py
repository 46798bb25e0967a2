"""Pretraining runs: one folder per (method, backbone, dataset, budget, seed), and the trained backbone as an encoder.

A run folder holds ``run.json`` (what was trained, how, and what the loop measured), the loop's checkpoints and,
once finished, ``backbone.safetensors`` (the trained backbone's weights). ``run:<folder>`` is an encoder every
command accepts: it rebuilds the recorded backbone, loads the weights (safetensors only, never a pickle) and
fingerprints them, so the feature cache and records work unchanged, and its ``info`` carries the method, every
resolved hyperparameter, the budget, the steps actually run, the wall time and the seed.

Rerunning the same pretraining (same config digest) resumes an interrupted run from its last checkpoint and skips
a finished one; a folder of another configuration is never overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmark.catalog import Catalog, Resolved
from benchmark.datasets.base import subsample
from benchmark.encoders.base import TorchImageEncoder
from benchmark.errors import ContractError, DataError, MissingData, OptionError, RecordError
from benchmark.features.contracts import checked_split
from benchmark.results.record import now_iso
from benchmark.runtime.training import derive_seed, own_rng
from benchmark.specs import Backbone, Budget, Method, Split
from benchmark.storage import safe_json
from benchmark.storage.atomic import remove_stale_temps, write_json, write_safetensors
from benchmark.storage.digest import digest
from benchmark.storage.local_weights import file_sha256

if TYPE_CHECKING:
    from benchmark.methods.progress import TrainResult
    from benchmark.methods.watch import Watch

RUN_FILE = "run.json"
WEIGHTS_FILE = "backbone.safetensors"
RUN_FORMAT = 1


@dataclass(frozen=True)
class PretrainRequest:
    """Everything that decides a run's weights; its digest names the run folder."""

    method: Resolved
    backbone: Resolved
    dataset: Resolved
    budget: Budget
    seed: int = 0
    batch_size: int | None = None
    train_size: int | None = None

    def describe(self) -> dict[str, Any]:
        return {"method": self.method.label, "method_options": dict(self.method.options),
                "backbone": self.backbone.label, "backbone_options": dict(self.backbone.options),
                "dataset": self.dataset.label, "dataset_options": dict(self.dataset.options),
                "budget": {k: v for k, v in asdict(self.budget).items() if v is not None}, "seed": self.seed,
                "batch_size": self.batch_size, "train_size": self.train_size, "format": RUN_FORMAT}

    @property
    def digest(self) -> str:
        return digest(self.describe())

    def folder(self, root: Path) -> Path:
        return Path(root) / f"{_slug(self.method.label)}__{_slug(self.backbone.label)}__" \
                            f"{_slug(self.dataset.label)}__s{self.seed}__{self.digest[:10]}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:50] or "x"


def trainable_backbone(resolved: Resolved, device: str) -> Backbone:
    """Load the backbone the user named and check it can be trained: a torch module with a differentiable
    ``encode``, and image preprocessing that states its input size and normalisation."""
    encoder = resolved.load()
    if not isinstance(encoder, TorchImageEncoder):
        kind = type(encoder).__name__
        raise OptionError(f"--backbone {resolved.label}: {kind} is not a trainable torch image encoder (pixels and "
                          "tfidf have no weights to train); use e.g. 'timm/resnet18[pretrained=false]'")
    cfg = encoder.preprocess_config
    try:
        size = cfg.get("input_size") or (3, cfg["img_size"], cfg["img_size"])
        input_size = tuple(int(v) for v in size)
        mean, std = (_per_channel(cfg[k], input_size[0]) for k in ("mean", "std"))
    except (KeyError, TypeError, ValueError) as exc:
        raise OptionError(f"--backbone {resolved.label}: its preprocessing does not state input_size (or "
                          f"img_size), mean and std ({exc}); a pretraining backbone needs them for the views") from exc
    if len(input_size) != 3:
        raise OptionError(f"--backbone {resolved.label}: input_size must be (C, H, W), got {input_size}")
    encoder.to(device).train()
    c, h, w = input_size
    return Backbone(resolved, encoder, int(encoder.embed_dim), (c, h, w), mean, std)


def _per_channel(value: Any, channels: int) -> tuple[float, ...]:
    """A mean or std as one float per channel (a scalar applies to every channel)."""
    values = [float(value)] * channels if isinstance(value, (int, float)) else [float(v) for v in value]
    if len(values) != channels:
        raise ValueError(f"{len(values)} values for {channels} channels")
    return tuple(values)


def _train_split(request: PretrainRequest) -> tuple[Split, dict[str, Any]]:
    dataset = request.dataset.load()
    train = checked_split(dataset, "train", request.dataset.label)
    data, how = subsample(train, request.train_size, request.seed)
    info = {"dataset": request.dataset.label, "split": "train", "size": len(data), "subsample": how,
            "classes": len(dataset.classes), "dataset_fingerprint": dataset.fingerprint}
    return data, info


def pretrain(catalog: Catalog, request: PretrainRequest, out_root: Path, *, device: str = "cpu",
             num_workers: int = 0, force: bool = False, checkpoint_every_s: float = 60.0,
             log: Callable[[str], None] | None = None, watch: Watch | None = None) -> Path:
    """Train ``request`` into its run folder under ``out_root`` (resuming or skipping as the folder says) and
    return the folder. Labels reach the method only when its spec says ``uses_labels``. ``watch``: the online
    probe and collapse monitors (a :class:`benchmark.methods.watch.Watch`); their curve goes into the result and
    ``curves.json``, and the curves into ``curves.png``."""
    from benchmark.methods.trainer import train
    from benchmark.runtime import distributed

    main = distributed.is_main()  # under torchrun every rank trains; only rank 0 writes the run folder
    say = (log if main else None) or (lambda msg: None)
    folder = request.folder(out_root)
    existing = read_run(folder) if (folder / RUN_FILE).is_file() else None
    if existing is not None and existing.get("config_digest") != request.digest:
        raise OptionError(f"run folder {folder} holds another configuration; choose another --out or delete it")
    if existing is not None and existing.get("status") == "finished" and not force:
        say(f"{folder} is already trained (skipped; --force retrains)")
        return folder
    if force:
        from benchmark.methods import checkpoint

        checkpoint.clear(folder)  # a finished checkpoint would otherwise end the retraining at once
    spec = request.method.spec
    # the backbone's fresh weights and the method's heads are drawn from an RNG seeded by the run's seed (the
    # same on every rank), so one command always starts from the same weights and a resume from step 0 too
    with own_rng(torch.device(device), derive_seed(request.seed, 3)):
        backbone = trainable_backbone(request.backbone, device)
        method = spec.build(backbone, **request.method.options)
    if not isinstance(method, Method):
        raise ContractError(f"method {request.method.name!r}: build() returned {type(method).__name__}, which lacks "
                            "views, objective, momentum_pairs or defaults (see benchmark.specs.Method)")
    data, data_info = _train_split(request)
    if main:
        folder.mkdir(parents=True, exist_ok=True)
    base = {"kind": "pretraining", "format": RUN_FORMAT, "config_digest": request.digest, **request.describe(),
            "uses_labels": spec.uses_labels, "data": data_info, "started_at": now_iso(),
            "plugin": catalog.plugin_of("methods", spec), "recipe": asdict(method.defaults)}
    if main:
        write_json(folder / RUN_FILE, {**base, "status": "running"})
    result = train(method, backbone, data, budget=request.budget, workdir=folder, device=device,
                   seed=request.seed, config_digest=request.digest, batch_size=request.batch_size,
                   num_workers=num_workers, checkpoint_every_s=checkpoint_every_s, log=log,
                   use_labels=spec.uses_labels, method_name=request.method.name, watch=watch)
    if not main:
        return folder
    save_weights(folder / WEIGHTS_FILE, backbone.encoder.backbone)
    summary = {k: v for k, v in asdict(result).items() if k not in ("loss_curve", "lr_curve")}
    write_json(folder / "loss_curve.json", {"loss": result.loss_curve, "lr": result.lr_curve})
    _write_curves(folder, result, request.method.label)
    write_json(folder / RUN_FILE, {**base, "status": "finished", "finished_at": now_iso(), "result": summary})
    say(f"trained {request.method.label} on {request.dataset.label}: {result.steps} steps in "
        f"{result.seconds:.0f} s ({result.samples_per_s:.0f} samples/s" + (
            f"; {result.train_samples_per_s:.0f} without the watch's {result.watch_seconds:.0f} s of checks"
            if result.watch_seconds else "") + f"); run folder {folder}")
    if result.stopped_by == "collapse":
        say(f"training stopped early: {result.collapse} (recorded in {folder / RUN_FILE})")
    return folder


def _write_curves(folder: Path, result: TrainResult, label: str) -> None:
    """``curves.json`` (loss, lr and the watch curve) and ``curves.png`` (when matplotlib is installed)."""
    from benchmark.methods.curves import plot_curves

    write_json(folder / "curves.json", {"loss": result.loss_curve, "lr": result.lr_curve,
                                        "watch": result.watch_curve, "collapse": result.collapse})
    plot_curves(folder / "curves.png", result.loss_curve, result.lr_curve, result.watch_curve, label)


def save_weights(path: Path, module: torch.nn.Module) -> None:
    """A module's state dict as safetensors, written atomically (contiguous CPU copies; shared tensors cloned)."""
    state = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    write_safetensors(path, state)
    remove_stale_temps(path.parent)  # what a killed write left (older than an hour: never a live writer's)


def read_run(folder: Path) -> dict[str, Any]:
    """``run.json`` of a run folder, checked; RecordError / MissingData name the folder."""
    path = Path(folder) / RUN_FILE
    if not path.is_file():
        raise MissingData(f"{folder} is not a repbench run folder (no {RUN_FILE}); give the folder that "
                          "`repbench pretrain` printed")
    try:
        run = safe_json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: invalid JSON, too deep, duplicate key
        raise RecordError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(run, dict) or run.get("kind") != "pretraining":
        raise RecordError(f"{path}: not a pretraining run record")
    return run


class RunEncoder(torch.nn.Module):
    """A trained backbone as an encoder: the recorded backbone with the run's weights; ``info`` says how it was
    trained (the records of every evaluation carry it)."""

    modality = "image"

    def __init__(self, inner: TorchImageEncoder, folder: Path, run: Mapping[str, Any]) -> None:
        super().__init__()
        self.inner = inner
        self.folder = folder
        self.run = dict(run)
        self.embed_dim = inner.embed_dim

    def preprocess(self, samples: Sequence[Any]) -> torch.Tensor:
        return self.inner.preprocess(samples)

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        return self.inner.encode(batch)

    @property
    def info(self) -> dict[str, Any]:
        r = self.run
        pre = {k: r.get(k) for k in ("method", "method_options", "backbone", "dataset", "budget", "seed",
                                     "uses_labels", "recipe", "data")}
        pre["result"] = r.get("result", {})
        return {**self.inner.info, "weights": f"pretrained-run:{r['method']} on {r['dataset']} ({self.folder.name})",
                "pretraining": pre}

    @property
    def fingerprint(self) -> str:
        return digest({"run": self.inner.fingerprint, "v": 1})


#: Where ``run:<name>`` looks when ``<name>`` is not a folder: ``repbench pretrain``'s default ``--out``.
DEFAULT_RUNS = Path("runs")


def run_folder(variant: str) -> Path:
    """The folder ``run:<variant>`` names: the path as given, else ``<name>`` under :data:`DEFAULT_RUNS`."""
    folder = Path(variant).expanduser()
    if not folder.is_dir() and (DEFAULT_RUNS / variant).is_dir():
        return DEFAULT_RUNS / variant
    return folder


def run_name(run: Mapping[str, Any]) -> str:
    """A run's name from its content (what trained what on which data, seed, config digest): the run folder's
    name as ``repbench pretrain`` made it, wherever the folder is now and whatever it is called."""
    return (f"{_slug(str(run.get('method')))}__{_slug(str(run.get('backbone')))}__{_slug(str(run.get('dataset')))}"
            f"__s{run.get('seed')}__{str(run.get('config_digest'))[:10]}")


def name_run(variant: str) -> str:
    """``EncoderSpec.name_of`` of ``run:``: the run's content name; a folder that is not a finished run is
    refused when the plan is made."""
    folder = run_folder(variant)
    run = read_run(folder)
    _check_finished(folder, run)
    return run_name(run)


def _check_finished(folder: Path, run: Mapping[str, Any]) -> None:
    if run.get("status") != "finished" or not (folder / WEIGHTS_FILE).is_file():
        raise MissingData(f"run {folder} has not finished training (status {run.get('status')!r}); rerun the "
                          "same `repbench pretrain` command to resume it")


def load_run(variant: str) -> RunEncoder:
    """``run:<folder>``: the backbone recorded in the folder's run.json with its trained weights (``run:<name>``
    also finds ``runs/<name>``)."""
    from safetensors.torch import load_file

    folder = run_folder(variant)
    run = read_run(folder)
    _check_finished(folder, run)
    check_run(folder, run)
    inner = Catalog.load().resolve("encoders", run["backbone"]).load()
    if not isinstance(inner, TorchImageEncoder):
        raise ContractError(f"run {folder}: the backbone {run['backbone']!r} no longer loads as a torch encoder")
    try:
        state = load_file(str(folder / WEIGHTS_FILE))
    except Exception as exc:  # SafetensorError: truncated or damaged
        raise DataError(f"{folder / WEIGHTS_FILE}: damaged weights ({type(exc).__name__}: {str(exc)[:200]}); "
                        "rerun the same `repbench pretrain` command with --force") from None
    try:
        inner.backbone.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ContractError(f"run {folder}: {WEIGHTS_FILE} does not fit the backbone {run['backbone']!r} "
                            f"({str(exc).splitlines()[0]})") from exc
    inner.__dict__.pop("weights_hash", None)  # the cached hash was of the freshly built weights
    inner.eval()
    return RunEncoder(inner, folder.resolve(), run)


#: The fields of run.json that :meth:`PretrainRequest.describe` wrote and ``config_digest`` covers.
_DESCRIBED = ("method", "method_options", "backbone", "backbone_options", "dataset", "dataset_options", "budget",
              "seed", "batch_size", "train_size", "format")


def check_run(folder: Path, run: Mapping[str, Any]) -> None:
    """What ``run:`` trusts in a finished folder, checked: run.json's described fields still give its
    ``config_digest`` (an edited method, dataset, budget or seed would go into records unchecked), its
    ``result.steps`` is the final checkpoint's, the backbone is not a run (a cycle, or a run of a run), and
    the weights are the folder's own file. RecordError / DataError name the file at fault."""
    path = folder / RUN_FILE
    backbone = run.get("backbone")
    if not isinstance(backbone, str) or backbone.startswith("run:"):
        raise RecordError(f"{path}: field 'backbone' must name the trained encoder (e.g. timm/resnet18), got "
                          f"{str(backbone)[:80]!r}; a run's backbone is never a run (that could lead back to itself)")
    if digest({k: run.get(k) for k in _DESCRIBED}) != run.get("config_digest"):
        raise RecordError(f"{path}: its method, backbone, dataset, budget or seed no longer match its config_digest "
                          "(the file was edited); rerun the `repbench pretrain` command that made it")
    from benchmark.methods import checkpoint

    meta = checkpoint.read_meta(folder)
    steps = (run.get("result") or {}).get("steps") if isinstance(run.get("result"), dict) else None
    if meta is not None and (meta.get("config_digest") != run.get("config_digest") or meta.get("step") != steps):
        raise RecordError(f"{path}: field 'result.steps' ({steps!r}) is not what its final checkpoint says "
                          f"({meta.get('step')!r} steps); the file was edited or belongs to another run")
    weights = folder / WEIGHTS_FILE
    if weights.is_symlink() or not weights.resolve().is_relative_to(folder.resolve()):
        raise DataError(f"{weights}: a link to {weights.resolve()}, outside the run folder; a run's weights must be "
                        "its own file (copy the folder instead of linking into it)")


def run_weights_id(variant: str | None, options: Mapping[str, Any]) -> str | None:
    """The content hash of a run folder's trained weights (None before it has any)."""
    return file_sha256(run_folder(variant or "") / WEIGHTS_FILE)
