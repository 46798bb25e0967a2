"""The methods table: one row per (pretraining method, backbone, evaluation dataset), grouped by backbone, with
offline kNN and linear (95% CIs), the run's final online probe (kNN and linear on the held-out subset, the
subsets' sizes, and the differences from the offline probes), RankMe at the end, the budget, the steps run,
wall time, samples/s and peak memory, beside reference rows (the same architecture at random init, raw pixels,
any other encoder evaluated on the same data), whose pretraining columns stay blank.

Built from ordinary evaluation records: an encoder ``run:<folder>`` carries its pretraining in
``encoder.pretraining`` (method, recipe, budget, what the loop measured); the online probe and RankMe are the
last points of ``encoder.pretraining.result.watch_curve`` (``repbench pretrain --probe-every N``; a run
without it shows those columns blank).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import pandas as pd

from benchmark.errors import OptionError
from benchmark.leaderboards.tables import md_escape
from benchmark.options import parse
from benchmark.results.record import Record

PROTOCOLS = ("knn", "linear")
ONLINE = ("online probe", "online knn", "online linear", "Δ knn", "Δ linear", "RankMe")
COLUMNS = ["label", "method", "backbone", "trained on", "budget", "steps", "evaluated on", *PROTOCOLS, *ONLINE,
           "wall time", "samples/s", "peak memory"]
BLANK = "–"


K = TypeVar("K")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def training_time(result: Mapping[str, Any]) -> tuple[float | None, bool]:
    """A pretraining result's time without the watch's checks and whether the run timed them apart:
    ``(seconds - watch_seconds, True)`` when ``0 < watch_seconds < seconds``, else ``(seconds, False)`` (the wall
    time, None when absent). The methods table and the methods plot both read a run's time through this."""
    seconds, watched = _number(result.get("seconds")), _number(result.get("watch_seconds"))
    if seconds is not None and watched is not None and 0 < watched < seconds:
        return seconds - watched, True
    return seconds, False


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a JSON object, else {} (a record's free-form blocks are untrusted input)."""
    return value if isinstance(value, Mapping) else {}


def _budget(budget: Mapping[str, Any] | None) -> str:
    if not budget:
        return BLANK
    units = {"epochs": "epochs", "steps": "steps", "seconds": "s"}
    return ", ".join(f"{v:g} {units.get(k, k)}" for k, v in budget.items())


def _bytes(n: Any) -> str:
    return f"{n / 2**20:.0f} MiB" if isinstance(n, (int, float)) and n > 0 else BLANK


def backbone_short(spec: str) -> str:
    """A backbone spec string as a short name: the model without its family
    (``timm/resnet18[img_size=32,pretrained=false]`` -> ``resnet18``); a ViT whose patch or image size is
    changed by options is named the way timm names its models
    (``timm/vit_tiny_patch16_224[img_size=32,patch_size=4]`` -> ``vit_tiny_patch4_32``)."""
    try:
        req = parse(spec)
    except OptionError:
        return spec
    model = req.name.rsplit("/", 1)[-1]
    match = re.fullmatch(r"(.*_patch)(\d+)_(\d+)", model)
    if match:
        patch, size = req.options.get("patch_size", match[2]), req.options.get("img_size", match[3])
        model = f"{match[1]}{patch}_{size}"
    return model


def run_label(pre: Mapping[str, Any]) -> str:
    """A pretraining run's short label: its method and backbone (``dino · vit_tiny_patch4_32``)."""
    return f"{pre.get('method')} · {backbone_short(str(pre.get('backbone')))}"


def trained_on(pre: Mapping[str, Any]) -> str:
    """A run's training data as the methods table shows it: ``fashion-mnist (60000)``."""
    data = as_mapping(pre.get("data"))
    return f"{data.get('dataset')} ({data.get('size')})"


def run_distinctions(runs: Mapping[K, Mapping[str, Any]]) -> dict[K, str]:
    """What tells apart runs (``pretraining`` blocks, keyed as ``runs``) that share a :func:`run_label`: the
    budget, then the seed, then the training data, as a suffix (`` · 2000 steps`` beside `` · 100 steps``); ""
    for a run with a label of its own, and for runs that agree on all of these."""
    parts = (lambda pre: _budget(as_mapping(pre.get("budget"))), lambda pre: f"seed {pre.get('seed')}", trained_on)
    labels = {key: run_label(pre) for key, pre in runs.items()}
    suffix = dict.fromkeys(runs, "")
    for part in parts:
        counts = Counter(labels[k] + suffix[k] for k in runs)
        for label in [v for v, n in counts.items() if n > 1]:
            same = [k for k in runs if labels[k] + suffix[k] == label]
            if len({part(runs[k]) for k in same}) > 1:  # this part tells them apart (at least in part)
                suffix.update({k: f"{suffix[k]} · {part(runs[k])}" for k in same})
    return suffix


def distinct_run_labels(runs: Mapping[K, Mapping[str, Any]]) -> dict[K, str]:
    """Each run's :func:`run_label` with its :func:`run_distinctions` (``dino · resnet18 · 2000 steps``)."""
    extra = run_distinctions(runs)
    return {key: run_label(pre) + extra[key] for key, pre in runs.items()}


#: What a point of a run's watch curve can hold (:mod:`benchmark.methods.watch`, and the trainer's lr and sizes)
WATCH_KEYS = ("step", "loss", "lr", "knn", "linear", "rankme", "std", "probe_n", "heldout_n", "probe_C", "seconds")


def watch_curve(pre: Mapping[str, Any]) -> list[dict[str, float]]:
    """A run's watch curve (``result.watch_curve`` of ``encoder.pretraining``), each point keeping only its
    finite numbers (a record is untrusted input); points without a step are dropped; [] without a curve."""
    curve = as_mapping(pre.get("result")).get("watch_curve")
    points = [p for p in curve if isinstance(p, Mapping)] if isinstance(curve, list) else []
    kept = [{k: v for k in WATCH_KEYS if (v := _number(p.get(k))) is not None} for p in points]
    return [p for p in kept if "step" in p]


def last_watch(pre: Mapping[str, Any]) -> dict[str, float]:
    """The end of a run's watch curve: ``knn``, ``linear`` (fractions), ``probe_n``, ``heldout_n`` and ``probe_C``
    (when recorded) from the last point with an online probe, ``rankme`` from the last point with it; {} without a
    curve."""
    points = watch_curve(pre)
    probed = [p for p in points if "knn" in p or "linear" in p]
    out = {k: v for k, v in probed[-1].items() if k in ("knn", "linear", "probe_n", "heldout_n", "probe_C")} \
        if probed else {}
    ranked = [p for p in points if "rankme" in p]
    if ranked:
        out["rankme"] = ranked[-1]["rankme"]
    return out


def wilson_half(p: float, n: float, z: float = 1.959963984540054) -> float:
    """Half the width of the Wilson score 95% interval of a proportion ``p`` over ``n`` samples (a fraction)."""
    centre_term = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre_term / (1 + z * z / n)


def _online(watched: Mapping[str, float]) -> dict[str, str]:
    cells = {}
    for key in ("knn", "linear"):
        if key in watched:
            n = watched.get("heldout_n")
            half = f" ± {wilson_half(watched[key], n) * 100:.1f}" if n and n >= 1 else ""
            cells[f"online {key}"] = f"{watched[key] * 100:.1f}{half}"
    if "probe_n" in watched and "heldout_n" in watched:  # labelled / held-out training images of that probe
        chosen = f", C {watched['probe_C']:g}" if isinstance(watched.get("probe_C"), (int, float)) else ""
        cells["online probe"] = f"{watched['probe_n']:.0f} / {watched['heldout_n']:.0f}{chosen}"
    if "rankme" in watched:
        cells["RankMe"] = f"{watched['rankme']:.1f}"
    return cells


def _identity(enc: Mapping[str, Any]) -> dict[str, Any]:
    """The descriptive columns of an encoder: its pretraining when it is a run, else what it is."""
    pre = enc.get("pretraining")
    if isinstance(pre, Mapping):
        res = as_mapping(pre.get("result"))
        labels = " (uses labels)" if pre.get("uses_labels") else ""
        backbone = str(pre.get("backbone"))
        seconds, rate = _number(res.get("seconds")), _number(res.get("samples_per_s"))
        watch_s, train_rate = _number(res.get("watch_seconds")), _number(res.get("train_samples_per_s"))
        timed = training_time(res)[1] and train_rate is not None  # the loop's own rate, the checks' share shown
        if timed:
            rate = train_rate
        watched = last_watch(pre)
        return {"label": run_label(pre), "method": f"{pre.get('method')}{labels}",
                "backbone": backbone, "trained on": trained_on(pre),
                "budget": _budget(pre.get("budget")), "steps": str(res.get("steps", BLANK)),
                "wall time": BLANK if seconds is None else f"{seconds:.0f} s" + (
                    f" ({watch_s:.0f} s checks)" if timed else ""),
                "samples/s": BLANK if rate is None else f"{rate:.0f}", "peak memory": _bytes(res.get("peak_memory_bytes")),
                **_online(watched), "_watched": watched, "_pretraining": pre}
    weights = str(enc.get("weights") or "")
    backbone = str(enc.get("label") or enc.get("name"))
    what = "none: raw pixels" if enc.get("name") == "pixels" else \
        "none: random init" if weights.startswith("random-init") else f"none: {weights or 'as published'}"
    label = "raw pixels" if enc.get("name") == "pixels" else f"{what[len('none: '):]} · {backbone_short(backbone)}"
    return {"label": label, "method": what, "backbone": backbone, "_watched": {}}


def _delta(online: float | None, offline: float | None) -> str:
    if online is None or offline is None:
        return BLANK
    points = round((online - offline) * 100, 1)
    return "0.0" if points == 0 else f"{points:+.1f}".replace("-", "−")  # no signed zero: "−0.0" reads as a loss


def methods_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per (encoder, evaluation dataset) with the kNN and linear cells as ``value ± half-CI`` (percent),
    the run's online probe and RankMe, and ``Δ`` = online minus offline (points); the newest ok record of a
    cell wins. Rows are grouped by evaluation dataset, then backbone (raw pixels last), runs before references."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    newest: dict[tuple[str, str, str], str] = {}
    for rec in records:
        r = rec.to_json()
        proto = r["protocol"]["name"]
        if r.get("status") != "ok" or proto not in PROTOCOLS:
            continue
        enc, dset = r["encoder"], r["dataset"]
        key = (str(enc.get("label") or enc["name"]), str(dset.get("label") or dset["name"]))
        stamp = str(r.get("created_at") or "")
        if newest.get((key[0], key[1], proto), "") > stamp:
            continue
        newest[(key[0], key[1], proto)] = stamp
        row = rows.setdefault(key, {**_identity(enc), "evaluated on": key[1]})
        m = r.get("metrics") or {}
        value, ci = _number(m.get("top1")), m.get("top1_ci95")
        if value is not None:
            half = f" ± {(ci[1] - ci[0]) * 50:.1f}" if isinstance(ci, list) and len(ci) == 2 else ""
            row[proto] = f"{value * 100:.1f}{half}"
            row[f"_{proto}"] = value
    for row in rows.values():
        for proto in PROTOCOLS:
            row[f"Δ {proto}"] = _delta(row["_watched"].get(proto), row.get(f"_{proto}"))
    distinct = distinct_run_labels({enc: row["_pretraining"] for (enc, _), row in rows.items()
                                    if row.get("_pretraining") is not None})
    for (enc, _), row in rows.items():
        row["label"] = distinct.get(enc, row["label"])
    frame = pd.DataFrame(list(rows.values()), columns=COLUMNS).astype(object).fillna(BLANK)
    if frame.empty:
        return frame
    reference = frame["method"].str.startswith("none")
    runs_on = set(frame.loc[~reference, "evaluated on"])
    if runs_on:  # references only where a run was evaluated (no text encoders beside image methods)
        frame = frame[~reference | frame["evaluated on"].isin(runs_on)]
    order = {"_pixels": (frame["method"] == "none: raw pixels").astype(int),
             "_ref": frame["method"].str.startswith("none").astype(int)}
    return (frame.assign(**order).sort_values(["evaluated on", "_pixels", "backbone", "_ref", "method"])
            .drop(columns=list(order)).reset_index(drop=True))  # a fresh index: the page shows no raw row numbers


NOTE = ("kNN and linear: top-1 in percent on the evaluation dataset's test split, ± half the width of the 95% "
        "bootstrap confidence interval. Online kNN and online linear: the run's own online probe at its last "
        "check (`repbench pretrain --probe-every N`): kNN and a logistic regression fitted on the frozen "
        "features of a fixed labelled subset of the training split and scored on a fixed, disjoint held-out "
        "subset of it (± half the width of the 95% Wilson interval over that subset, when the record says its "
        "size); online probe: the sizes of those two subsets (labelled / held-out images) and the C the probe "
        "chose on a 20% split of its labelled subset, as the linear protocol does; Δ: online minus "
        "offline, in points. RankMe: the effective rank of the embeddings of a fixed "
        "batch at the last check. Runs trained without `--probe-every` leave these columns blank. Rows whose "
        "method is `none` are references (the same architecture at random init, raw pixels). Wall time "
        "(with the part the watch's checks took, where the run timed them), samples/s (training steps only, "
        "where the checks were timed) and peak memory (CUDA max allocated, or peak RSS on the CPU) are the "
        "pretraining loop's own.")


def methods_markdown(records: Iterable[Record]) -> str:
    """The methods table as GitHub markdown (every string escaped) and the note that explains it."""
    from tabulate import tabulate

    frame = methods_frame(records)
    if frame.empty:
        return "(no kNN or linear results)"
    cells = [[md_escape(str(v)) for v in row] for row in frame.itertuples(index=False)]
    table = tabulate(cells, headers=[md_escape(c) for c in frame.columns], tablefmt="github", disable_numparse=True)
    return f"{table}\n\n{NOTE}"
