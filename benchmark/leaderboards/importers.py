"""Published numbers, read from a peer's own files into records marked ``"source": "published"``.

Three formats, each as its project writes it:

* MTEB's ``TaskResult`` JSON (``<org>__<model>/<revision>/<TaskName>.json`` in ``embeddings-benchmark/results``):
  ``task_name``, ``mteb_version``, ``dataset_revision``, ``evaluation_time`` and ``scores: {split: [{main_score,
  hf_subset, languages, <metrics>...}]}``. One evaluation record per (split, subset), primary metric
  ``main_score`` (a fraction, as MTEB stores it), protocol ``mteb``.
* timm's ``results-<dataset>.csv`` (``model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,
  interpolation``; top-k in percent, params in millions): one evaluation record per row, ``top1``/``top5`` as
  fractions, protocol ``timm-eval``.
* timm's ``benchmark-infer-<precision>-<layout>-pt<torch>-<cuda|cpu>-<device>[-dynamo].csv``
  (``model,infer_samples_per_sec,infer_step_time,infer_batch_size,infer_img_size,...,param_count``): one
  throughput record per row.

Every record carries ``provenance``: the file it was read from, the URL given for it, the format, the row or
(split, subset), the peer's versions, and when it was imported. Nothing is measured here and nothing is guessed:
a file that does not have a format's required fields raises :class:`~benchmark.errors.DataError` naming the file
and the field.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import DataError, OptionError
from benchmark.results.record import Record, now_iso
from benchmark.results.throughput import ThroughputRecord, throughput_id
from benchmark.storage import safe_json
from benchmark.storage.digest import digest

PUBLISHED = "published"
FORMATS = ("mteb", "timm-results", "timm-benchmark")
#: timm's benchmark file names: benchmark-infer-<precision>-<layout>-pt<torch>-<cuda|cpu>-<device>[-dynamo].csv
BENCH_NAME = re.compile(r"benchmark-infer-(?P<prec>amp_bf16|amp|bf16|fp16|fp32)-(?P<layout>nchw|nhwc)"
                        r"-pt(?P<torch>\d+)-(?P<backend>cu\d+|cpu)-(?P<device>.+?)(?P<dynamo>-dynamo)?\.csv")
#: timm's ``--amp`` autocasts to float16 unless ``amp_bf16`` says bfloat16
_PRECISION = {"amp": "fp16", "amp_bf16": "bf16", "bf16": "bf16", "fp16": "fp16", "fp32": "fp32"}


def _provenance(path: Path, url: str | None, fmt: str, **more: Any) -> dict[str, Any]:
    out = {"file": path.name, "path": str(path), "url": url, "format": fmt, "imported_at": now_iso()}
    out.update({k: v for k, v in more.items() if v is not None})
    return out


def published_record(*, encoder: Mapping[str, Any], dataset: Mapping[str, Any], protocol: Mapping[str, Any],
                     metrics: Mapping[str, Any], provenance: Mapping[str, Any], timings: Mapping[str, Any] | None = None,
                     environment: Mapping[str, Any] | None = None, where: str = "published record") -> Record:
    """An ok evaluation record (seed 0) marked ``source: published`` with ``provenance``, validated like any
    record. Its id differs from a measured cell's with the same labels (``published`` is part of it)."""
    labels = [encoder["label"], dataset["label"], protocol["label"]]
    data = {
        "schema_version": 1, "id": digest({"e": labels[0], "d": labels[1], "p": labels[2], "s": 0,
                                           "src": PUBLISHED}, 12),
        "created_at": provenance.get("imported_at") or now_iso(), "status": "ok", "encoder": dict(encoder),
        "dataset": dict(dataset), "protocol": dict(protocol), "metrics": dict(metrics), "seed": 0,
        "timings": dict(timings or {}), "environment": dict(environment or {}), "error": None,
        "source": PUBLISHED, "provenance": dict(provenance),
    }
    return Record.from_json(data, where)


# --- MTEB --------------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return safe_json.loads(path.read_text(encoding="utf-8"), huge_ints="float")
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: invalid, nested too deep, duplicate key
        raise DataError(f"{path}: cannot read it as JSON ({exc})") from None


def _mteb_model(path: Path, model: str | None) -> tuple[str, str | None]:
    """The model name and revision: given, else ``model_meta.json`` beside the file, else the results
    repository's folder layout ``<org>__<name>/<revision>/<Task>.json``."""
    meta_file = path.parent / "model_meta.json"
    meta = _read_json(meta_file) if meta_file.is_file() else {}
    revision = meta.get("revision") if isinstance(meta, dict) else None
    if model:
        return model, revision
    if isinstance(meta, dict) and isinstance(meta.get("name"), str):
        return meta["name"], revision
    parts = path.resolve().parts
    if len(parts) >= 3 and "__" in parts[-3]:
        return parts[-3].replace("__", "/", 1), revision or parts[-2]
    raise DataError(f"{path}: cannot tell which model these MTEB scores are for (no model_meta.json beside it, "
                    "not in an <org>__<model>/<revision>/ folder); pass --model NAME")


#: What an imported number may be at most in magnitude (records refuse more: MAX_ABS_NUMBER).
_MAX_ABS = 1e15


def _finite(v: Any) -> bool:
    """A finite number within +-1e15 (no float() of a huge integer: it would overflow)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return -_MAX_ABS <= v <= _MAX_ABS if isinstance(v, int) else math.isfinite(v) and abs(v) <= _MAX_ABS


def import_mteb(path: Path | str, *, model: str | None = None, url: str | None = None) -> list[Record]:
    """The records of one MTEB ``TaskResult`` file: one per (split, hf_subset) entry of ``scores``."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, dict) and "mteb_dataset_name" in data and "scores" not in data:
        raise DataError(f"{path}: an MTEB result from before mteb 1.11 (no 'scores', no 'main_score'); export it "
                        "again with a current mteb")
    if not isinstance(data, dict) or not isinstance(data.get("task_name"), str) \
            or not isinstance(data.get("scores"), dict):
        raise DataError(f"{path}: not an MTEB TaskResult (needs 'task_name' and 'scores': {{split: [...]}})")
    name, revision = _mteb_model(path, model)
    records = []
    for split, entries in data["scores"].items():
        if not isinstance(entries, list):
            raise DataError(f"{path}: field 'scores.{split}' must be a list of score objects")
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not _finite(entry.get("main_score")):
                raise DataError(f"{path}: field 'scores.{split}[{i}].main_score' must be a finite number")
            if not -1 <= entry["main_score"] <= 1:  # accuracies, nDCG, V-measure, Spearman: all within [-1, 1]
                raise DataError(f"{path}: field 'scores.{split}[{i}].main_score' must be a fraction in [-1, 1] as "
                                f"MTEB stores it, got {entry['main_score']!r} (a percentage?)")
            records.append(_mteb_record(path, data, entry, split, name, revision, url))
    if not records:
        raise DataError(f"{path}: the MTEB result has no scores")
    return records


def _mteb_record(path: Path, data: dict[str, Any], entry: dict[str, Any], split: str, model: str,
                 revision: str | None, url: str | None) -> Record:
    task, subset = data["task_name"], entry.get("hf_subset", "default")
    options = {k: v for k, v in (("hf_subset", subset), ("split", split)) if v not in ("default", "test")}
    label = task + (f"[{','.join(f'{k}={v}' for k, v in options.items())}]" if options else "")
    metrics = {k: v for k, v in entry.items() if _finite(v)}
    prov = _provenance(path, url, "mteb-task-result", split=split, hf_subset=subset,
                       mteb_version=data.get("mteb_version"), dataset_revision=data.get("dataset_revision"),
                       model_revision=revision)
    timings = {"total_s": data["evaluation_time"]} if _finite(data.get("evaluation_time")) else {}
    return published_record(
        encoder={"name": model, "label": model, "modality": "text", "weights": revision},
        dataset={"name": task, "label": label, "modality": "text", "options": options,
                 "languages": entry.get("languages"), "revision": data.get("dataset_revision")},
        protocol={"name": "mteb", "label": "mteb", "primary_metric": "main_score", "higher_is_better": True},
        metrics=metrics, provenance=prov, timings=timings,
        environment={"mteb_version": data.get("mteb_version")}, where=str(path))


# --- timm CSVs ---------------------------------------------------------------------------------------------------
def _rows(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read it ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}; has {', '.join(reader.fieldnames or [])}")
    return list(reader)


def _num(path: Path, row: int, col: str, text: str | None, *, required: bool = True, lo: float = -_MAX_ABS,
         hi: float = _MAX_ABS, whole: bool = False) -> float | None:
    """A CSV number in [lo, hi] (a whole number with ``whole``; timm writes thousands with commas:
    ``"1,014.45"``); None when empty and not required."""
    if text is None or not text.strip():
        if required:
            raise DataError(f"{path}: row {row}: column {col!r} is empty")
        return None
    try:
        value = float(text.replace(",", ""))
    except ValueError:
        raise DataError(f"{path}: row {row}: column {col!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{path}: row {row}: column {col!r} must be finite, got {_cut(text)!r}")
    if not lo <= value <= hi or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise DataError(f"{path}: row {row}: column {col!r} must be {kind} in [{lo:g}, {hi:g}], got {_cut(text)!r}")
    return value


def _cut(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _params(path: Path, row: int, text: str | None) -> int | None:
    # in millions; 1e7 millions is ten trillion parameters
    millions = _num(path, row, "param_count", text, required=False, lo=0, hi=1e7)
    return None if millions is None else round(millions * 1e6)


def import_timm_results(path: Path | str, *, url: str | None = None, dataset: str | None = None) -> list[Record]:
    """The records of a timm ``results-<dataset>.csv``: top-1/top-5 (percent there, fractions here)."""
    path = Path(path)
    name = dataset or (path.stem[len("results-"):] if path.stem.startswith("results-") else None)
    if not name:
        raise DataError(f"{path}: cannot tell the dataset from the file name (timm names it "
                        "results-<dataset>.csv); pass --dataset NAME")
    records = []
    for i, row in enumerate(_rows(path, ("model", "top1", "top5")), start=2):  # row 1 is the header
        top1, top5 = (_num(path, i, c, row[c]) for c in ("top1", "top5"))
        assert top1 is not None and top5 is not None
        if not (0 <= top1 <= 100 and 0 <= top5 <= 100):
            raise DataError(f"{path}: row {i}: top1/top5 must be percentages in [0, 100], got {top1}, {top5}")
        if top1 > top5:
            raise DataError(f"{path}: row {i}: top1 ({top1}) is above top5 ({top5}), which cannot be; is the row "
                            "damaged or are the columns swapped?")
        hyper = {k: row[k] for k in ("img_size", "crop_pct", "interpolation") if row.get(k)}
        records.append(published_record(
            encoder={"name": f"timm/{row['model']}", "label": f"timm/{row['model']}", "modality": "image",
                     "params": _params(path, i, row.get("param_count"))},
            dataset={"name": name, "label": name, "modality": "image"},
            protocol={"name": "timm-eval", "label": "timm-eval", "primary_metric": "top1",
                      "higher_is_better": True, "hyperparameters": hyper},
            metrics={"top1": top1 / 100, "top5": top5 / 100},
            provenance=_provenance(path, url, "timm-results-csv", row=i), where=f"{path} row {i}"))
    return records


def _default_img_size(model: str) -> int | None:
    """timm's default input size for an architecture, when the installed timm knows it (no download)."""
    try:
        import timm

        cfg = timm.models.get_pretrained_cfg(model)
        size = getattr(cfg, "input_size", None) if cfg is not None else None
        return int(size[-1]) if size else None
    except Exception:  # an architecture this timm does not know: the label keeps the size
        return None


def import_timm_benchmark(path: Path | str, *, url: str | None = None) -> list[ThroughputRecord]:
    """The throughput records of a timm ``benchmark-infer-*.csv``; the device, precision, memory layout and
    compilation come from the file name, as timm names it. The encoder label is ``timm/<model>``, with
    ``[img_size=N]`` when the row's size is not timm's default for it."""
    path = Path(path)
    m = BENCH_NAME.fullmatch(path.name)
    if m is None:
        raise DataError(f"{path}: not a timm inference benchmark file name (benchmark-infer-<amp|amp_bf16|bf16|"
                        "fp32>-<nchw|nhwc>-pt<torch>-<cuXXX|cpu>-<device>[-dynamo].csv); keep timm's name")
    device = "cpu" if m["backend"] == "cpu" else "cuda"
    precision, layout, compiled = _PRECISION[m["prec"]], m["layout"] == "nhwc", bool(m["dynamo"])
    records = []
    for i, row in enumerate(_rows(path, ("model", "infer_samples_per_sec", "infer_step_time",
                                         "infer_batch_size")), start=2):
        rate = _num(path, i, "infer_samples_per_sec", row["infer_samples_per_sec"])
        step_ms = _num(path, i, "infer_step_time", row["infer_step_time"])
        batch = _num(path, i, "infer_batch_size", row["infer_batch_size"], lo=1, hi=2**24, whole=True)
        assert rate is not None and step_ms is not None and batch is not None
        if rate <= 0 or step_ms <= 0:
            raise DataError(f"{path}: row {i}: samples/s and step time must be positive")
        size = _num(path, i, "infer_img_size", row.get("infer_img_size"), required=False, lo=1, hi=2**16,
                    whole=True)
        img = row.get("infer_img_size") or None
        label = f"timm/{row['model']}"
        if size is not None and _default_img_size(row["model"]) != int(size):
            label += f"[img_size={int(size)}]"
        step_s = step_ms / 1000
        rid = throughput_id(label, device, m["device"], precision, int(batch), None, layout, compiled)
        data = {
            "kind": "throughput", "schema_version": 1, "id": rid, "created_at": now_iso(), "status": "ok",
            "encoder": {"name": f"timm/{row['model']}", "label": label, "img_size": img,
                        "params": _params(path, i, row.get("param_count"))},
            "device": device, "device_name": m["device"], "precision": precision, "precision_ran": precision,
            "batch_size": int(batch), "seq_len": None, "channels_last": layout, "compile": compiled,
            # timm publishes one mean step time, not rounds: the one "round" is that mean, min = median = max
            "timing": {"round_s": [step_s], "warmup": 0, "steps_per_round": 1, "median_s": step_s, "min_s": step_s,
                       "max_s": step_s},
            "metrics": {"samples_per_s": rate, "ms_per_batch": step_ms,
                        **{k: v for k in ("infer_gmacs", "infer_macts")
                           if (v := _num(path, i, k, row.get(k), required=False)) is not None}},
            "environment": {"torch": m["torch"], "backend": m["backend"]}, "error": None,
            "notes": ["published by timm: one mean step time per row, no rounds or spread"],
            "source": PUBLISHED,
            "provenance": _provenance(path, url, "timm-benchmark-infer-csv", row=i),
        }
        records.append(ThroughputRecord.from_json(data, f"{path} row {i}"))
    return records


def detect_format(path: Path | str) -> str:
    """``mteb`` (a .json), ``timm-benchmark`` (benchmark-infer-*.csv) or ``timm-results`` (other .csv)."""
    path = Path(path)
    if path.suffix == ".json":
        return "mteb"
    if path.suffix == ".csv":
        return "timm-benchmark" if path.name.startswith("benchmark-infer-") else "timm-results"
    raise DataError(f"{path}: cannot tell its format from the name (.json: MTEB, results-*.csv or "
                    "benchmark-infer-*.csv: timm); pass --format")


def expand(paths: Sequence[Path | str]) -> list[Path]:
    """The files to import: each file as given; a folder's ``*.json`` and ``*.csv`` (recursively, sorted),
    leaving out MTEB's ``model_meta.json`` (read beside each result, not a result itself)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in (".json", ".csv")
                          and f.name != "model_meta.json")
        else:
            out.append(p)
    return list(dict.fromkeys(out))  # a file named twice (itself and its folder) is read once


def _source(record: Record | ThroughputRecord) -> str:
    prov = (record.provenance if isinstance(record, Record) else record.extra.get("provenance")) or {}
    where = [str(prov.get("path") or prov.get("file"))]
    where += [f"{k} {prov[k]}" for k in ("row", "split", "hf_subset", "model_revision") if prov.get(k) is not None]
    return " ".join(where)


def check_conflicts(imported: Sequence[tuple[Path, Sequence[Record | ThroughputRecord]]]) -> None:
    """Raise :class:`DataError` when two imported records would be written to one file (one would silently
    replace the other): two revisions of one model, two rows of one model and dataset in a CSV."""
    from benchmark.results.store import record_filename
    from benchmark.results.throughput import throughput_filename

    seen: dict[str, Record | ThroughputRecord] = {}
    for _, records in imported:
        for r in records:
            if isinstance(r, ThroughputRecord):
                name, what = throughput_filename(r), f"{r.label} ({r.device_name}, {r.precision}, b{r.batch_size})"
            else:
                name = record_filename(r.encoder.display, r.dataset.display, r.protocol.display, r.seed)
                what = f"{r.encoder.display} on {r.dataset.display} ({r.protocol.display})"
            first = seen.setdefault(name, r)
            if first is not r and _source(first) != _source(r):
                raise DataError(f"{_source(first)} and {_source(r)} are both {what}: one would overwrite the "
                                "other; import one of them (one revision folder, one row per model)")


def import_file(path: Path | str, *, fmt: str | None = None, model: str | None = None, url: str | None = None,
                dataset: str | None = None) -> list[Record | ThroughputRecord]:
    """The published records in one file, of format ``fmt`` (one of :data:`FORMATS`; default: from the name)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    fmt = fmt or detect_format(path)
    if fmt == "mteb":
        return list(import_mteb(path, model=model, url=url))
    if fmt == "timm-results":
        return list(import_timm_results(path, url=url, dataset=dataset))
    if fmt == "timm-benchmark":
        return list(import_timm_benchmark(path, url=url))
    raise OptionError(f"--format {fmt!r}: unknown format; one of {', '.join(FORMATS)}")
