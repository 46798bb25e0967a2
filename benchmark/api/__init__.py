"""The Python API behind ``import repbench``: evaluate an encoder on datasets with protocols, in process.

It is the CLI's ``eval`` without the command line: the same catalog, plan and runner (so the same checks, feature
cache, resumption and records). In-memory objects (a model, a Dataset) enter the plan as specs added to the
catalog under the plugin name ``python-api``; everything named by a string resolves as on the command line.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.catalog import Catalog, load_catalog
from benchmark.errors import OptionError
from benchmark.options import split_list
from benchmark.specs import Dataset, DatasetSpec, EncoderSpec

if TYPE_CHECKING:  # records import torch (results.store): `repbench list` imports this package without them
    from benchmark.results import Record

#: The plugin name in-memory encoders and datasets are registered under (records' ``encoder.plugin``).
API_PLUGIN = "python-api"


def evaluate(encoder: Any, datasets: str | Sequence[Any], protocols: str | Sequence[str] = ("knn", "linear"), *,
             preprocess: Callable[[Any], Any] | None = None, name: str | None = None,
             modality: str | None = None, results_dir: str | Path | None = None,
             cache_dir: str | Path | None = None, use_cache: bool = True, device: str | None = None,
             batch_size: int = 256, precision: str = "fp32", seed: int = 0, force: bool = False,
             quiet: bool = True, save_predictions: bool = False, catalog: Catalog | None = None) -> list[Record]:
    """Evaluate ``encoder`` on every dataset with every protocol; one typed :class:`~benchmark.results.Record`
    per cell, in plan order (a failed cell is a record with ``status == "error"``).

    ``encoder``: a spec string (``"timm/resnet18[pretrained=false]"``), an object meeting the Encoder contract,
    a timm model, a ``torch.nn.Module`` with ``preprocess`` (one raw sample -> tensor; ``modality`` "image" by
    default), or a text model with ``encode(list[str])`` (sentence-transformers). ``name`` labels an in-memory
    encoder in records (default ``py/<architecture or class>``). ``datasets``: names (``"digits"``,
    ``"digits[test_fraction=0.5]"``; a comma-separated string works too) or Dataset objects (labelled
    ``py/<its name>``). ``protocols``:
    spec strings. With ``results_dir`` the records are written there as ``repbench eval --results`` writes them
    (and finished cells are skipped unless ``force``); without, nothing is kept on disk but the feature cache.
    ``save_predictions=True`` (it needs ``results_dir``) also writes each cell's predictions beside its record,
    the files ``repbench eval --save-predictions`` writes (:mod:`benchmark.results.predictions`).
    """
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig, run_plan
    from benchmark.storage.paths import default_cache_dir
    from benchmark.storage.writable import check_folder

    if results_dir is not None:
        check_folder(results_dir, "results_dir")
    if not isinstance(save_predictions, bool):
        raise OptionError(f"save_predictions must be True or False, got {save_predictions!r}")
    if save_predictions and results_dir is None:
        raise OptionError("save_predictions=True needs results_dir=: the prediction files are written beside each "
                          "record there")
    if use_cache:
        check_folder(cache_dir if cache_dir is not None else default_cache_dir(), "cache_dir")
    catalog = catalog or (Catalog.load() if quiet else load_catalog())  # plugin errors on stderr unless quiet
    enc_names = [_add_encoder(catalog, encoder, preprocess, modality, name)]
    dset_names = [_add_dataset(catalog, d) for d in _as_list(datasets)]
    prot_names = split_list(protocols) if isinstance(protocols, str) else list(protocols)
    if not dset_names or not prot_names:
        raise OptionError("evaluate() needs at least one dataset and one protocol")
    plan = make_plan(catalog, enc_names, dset_names, prot_names)
    if not plan.cells:
        raise OptionError(f"nothing to run: encoder {enc_names[0]!r} has no dataset of its modality among "
                          f"{', '.join(map(str, dset_names))}")
    with tempfile.TemporaryDirectory(prefix="repbench-api-") as scratch:
        config = RunConfig(results_dir=Path(results_dir) if results_dir is not None else Path(scratch),
                           cache_dir=Path(cache_dir) if cache_dir is not None else None, use_cache=use_cache,
                           device=device, batch_size=batch_size, precision=precision, seed=seed, force=force,
                           quiet=quiet, save_predictions=save_predictions)
        return run_plan(catalog, plan, config)


def _as_list(datasets: str | Sequence[Any]) -> list[Any]:
    if isinstance(datasets, str):
        return list(split_list(datasets))
    if isinstance(datasets, Dataset):
        return [datasets]
    return list(datasets)


def _add_encoder(catalog: Catalog, encoder: Any, preprocess: Callable[[Any], Any] | None, modality: str | None,
                 name: str | None) -> str:
    """The spec string naming ``encoder`` in ``catalog``: itself for a string, else a spec added for the object."""
    from benchmark.encoders.objects import as_encoder, default_name

    if isinstance(encoder, str):
        if preprocess is not None or name is not None:
            raise OptionError("preprocess= and name= are for in-memory encoders; a spec string names its own")
        return encoder
    label = name or default_name(encoder)
    enc = as_encoder(encoder, preprocess=preprocess, modality=modality, name=label)
    fingerprint = enc.fingerprint

    def load(fingerprint: str = fingerprint) -> Any:  # the fingerprint as an option: changed weights rerun
        return enc

    _add(catalog, "encoders", EncoderSpec(label, enc.modality, load,  # type: ignore[arg-type]
                                          description="an in-memory encoder (repbench.evaluate)"))
    return label


def _add_dataset(catalog: Catalog, dataset: Any) -> str:
    """The spec string naming ``dataset`` in ``catalog``: itself for a string, else a spec added for the object."""
    if isinstance(dataset, str):
        return dataset
    if not isinstance(dataset, Dataset):
        raise OptionError(f"dataset {type(dataset).__name__}: not a dataset name or a Dataset (modality, classes, "
                          "splits, info, fingerprint, split(name)); benchmark.datasets.InMemoryDataset builds one")
    base = str(getattr(dataset, "name", None) or type(dataset).__name__)
    label = "py/" + "".join(c if c.isalnum() or c in "._-" else "-" for c in base)
    fingerprint = dataset.fingerprint

    def load(fingerprint: str = fingerprint) -> Any:
        return dataset

    _add(catalog, "datasets", DatasetSpec(label, dataset.modality, load,  # type: ignore[arg-type]
                                          description="an in-memory dataset (repbench.evaluate)"))
    return label


def _add(catalog: Catalog, kind: str, spec: Any) -> None:
    known = catalog.specs[kind].get(spec.name)
    if known is not None and catalog.plugin_of(kind, known) != API_PLUGIN:
        raise OptionError(f"{kind[:-1]} name {spec.name!r} is taken by plugin {catalog.plugin_of(kind, known)!r}; "
                          "pass name= (encoders) or give the object another name")
    catalog.specs[kind].pop(spec.name, None)  # the same catalog reused: the newer object wins
    try:
        catalog.add(kind, spec, API_PLUGIN)
    except ValueError as exc:
        raise OptionError(str(exc)) from exc
