"""An encoder's representation profile: the properties the field argues about, measured by one harness.

``repbench profile --encoder E [--dataset D ...]`` evaluates, for each dataset D (default: digits and mnist5k
for image encoders, r8 for text ones), ordinary cells of the ordinary plan, so the feature cache, records and
leaderboards treat them like any other:

- in domain: ``knn``, ``linear``, ``labeleff`` (area under the labels-per-class curve), ``cluster`` (NMI) and
  ``retrieval`` (mAP@R) on D;
- domain shift: ``knn`` and ``linear`` on ``shift:D>T`` for D's partner T (:data:`PARTNERS`), beside the
  in-domain cells on D: the generalisation gap;
- robustness: ``knn`` on ``corrupt:D[kind=K,severity=S]`` for every kind of D's modality and the chosen
  severities (the train features are D's own, extracted once: :class:`~benchmark.specs.SharedSplits`);
- depth: ``knn`` and ``linear`` of ``E[layers=all]`` (one encoder per layer) on D, for encoders whose spec can
  count its layers.

:func:`profile_table` reads the records back into one row per (encoder, dataset). Every number in it is a
record's primary metric (or the mean of several, as named), never computed anew.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.catalog import Catalog
from benchmark.datasets.corruptions import CORRUPTION_KINDS, SEVERITIES
from benchmark.errors import OptionError, RepbenchError
from benchmark.options import Requested, parse

#: The dataset whose test split a profile's shift cells use, for each source dataset (same label space).
PARTNERS: dict[str, str] = {"digits": "mnist5k", "mnist5k": "digits", "r8": "r52"}
DEFAULT_DATASETS: dict[str, tuple[str, ...]] = {"image": ("digits", "mnist5k"), "text": ("r8",)}
IN_DOMAIN = ("knn", "linear", "labeleff", "cluster", "retrieval")
SHIFT = ("knn", "linear")
ROBUST = ("knn",)
DEPTH = ("knn", "linear")

COLUMNS = ["encoder", "dataset", "knn", "linear", "labeleff auc", "nmi", "map@r", "shift to", "shift linear",
           "gap", "corrupted knn", "drop", "best layer (depth)"]


@dataclass(frozen=True)
class Part:
    """One product of encoders x datasets x protocols: a plan of its own."""

    what: str
    encoders: tuple[str, ...]
    datasets: tuple[str, ...]
    protocols: tuple[str, ...]


def profile_parts(catalog: Catalog, encoders: Sequence[str], datasets: Sequence[str] = (),
                  severities: Sequence[int] = SEVERITIES, depth: bool = True) -> list[Part]:
    """The cells of the profile of ``encoders`` on ``datasets`` (per modality defaults when empty), as plans.

    Raises :class:`OptionError` for a dataset without a shift partner, a severity outside 1-5 or an encoder
    list mixing modalities with explicit datasets of one modality only (nothing would run for the others).
    """
    bad = [s for s in severities if s not in SEVERITIES]
    if bad:
        raise OptionError(f"--severities {bad[0]}: severities are {', '.join(map(str, SEVERITIES))}")
    parts: list[Part] = []
    for modality in ("image", "text"):
        encs = tuple(e for e in encoders if catalog.resolve("encoders", e).spec.modality == modality)
        if not encs:
            continue
        dsets = tuple(d for d in datasets if catalog.resolve("datasets", d).spec.modality == modality) \
            if datasets else DEFAULT_DATASETS[modality]
        if not dsets:
            raise OptionError(f"--dataset gives no {modality} dataset for the {modality} encoder(s) "
                              f"{', '.join(encs)}; add one (e.g. {DEFAULT_DATASETS[modality][0]})")
        for d in dsets:
            name = catalog.resolve("datasets", d).name
            if name not in PARTNERS:
                raise OptionError(f"dataset {d!r} has no shift partner for the profile; profiles run on "
                                  f"{', '.join(PARTNERS)} (a partner shares the label space)")
        parts.append(Part("in domain", encs, dsets, IN_DOMAIN))
        parts.append(Part("domain shift", encs, tuple(_shift(d, PARTNERS[catalog.resolve("datasets", d).name])
                                                      for d in dsets), SHIFT))
        parts.append(Part("robustness", encs, tuple(_corrupt(d, kind, s) for d in dsets for kind in CORRUPTION_KINDS[modality]
                                                    for s in severities), ROBUST))
        layered = tuple(_with_layers(e) for e in encs if depth and _counts_layers(catalog, e))
        if layered:
            parts.append(Part("depth", layered, dsets, DEPTH))
    if not parts:
        raise OptionError("no encoder to profile; give --encoder")
    return parts


def _corrupt(dataset: str, kind: str, severity: int) -> str:
    """``corrupt:`` over ``dataset``, its own options moved under ``base.``."""
    req = parse(dataset)
    options = {"kind": kind, "severity": str(severity), **{f"base.{k}": v for k, v in req.options.items()}}
    return str(Requested(f"corrupt:{req.name}", options))


def _shift(dataset: str, partner: str) -> str:
    """``shift:`` from ``dataset`` to ``partner``, the dataset's own options moved under ``source.``."""
    req = parse(dataset)
    return str(Requested(f"shift:{req.name}>{partner}", {f"source.{k}": v for k, v in req.options.items()}))


def _counts_layers(catalog: Catalog, encoder: str) -> bool:
    """Whether the encoder's layers can be counted before loading (else its depth probes are left out: a
    Hugging Face model not in the local cache, a plugin's encoder without ``count_layers``)."""
    from benchmark.encoders.layers import count_layers

    if catalog.resolve("encoders", encoder).spec.count_layers is None:
        return False
    try:
        return count_layers(catalog, parse(encoder)) is not None
    except RepbenchError:  # an encoder without a layer option, or one whose count needs what is not here
        return False


def _with_layers(encoder: str) -> str:
    req = parse(encoder)
    return str(Requested(req.name, {**req.options, "layers": "all"}))


def profile_table(records: Iterable[Any], baseline: str | None = None) -> pd.DataFrame:
    """One row per (encoder, in-domain dataset) of the profile records: in-domain kNN/linear top-1,
    label-efficiency AUC, NMI, mAP@R, the shift target with linear accuracy there and the gap (in-domain
    linear minus cross-domain linear), kNN accuracy under corruption averaged over kinds and severities with its
    drop from clean, and the relative depth of the best linear layer. Values are fractions (NaN: no record).
    With a ``baseline`` encoder (label), also its mean corruption error (mCE, Hendrycks & Dietterich: the
    encoder's kNN errors under corruption over the baseline's, averaged over kinds; 1 = as robust as the
    baseline, lower is better)."""
    from benchmark.leaderboards.depth import depth_frame
    from benchmark.leaderboards.robustness import (
        cell_means,
        corruption_table,
        generalisation_gap,
        robustness_summary,
    )
    from benchmark.leaderboards.tables import to_frame

    records = list(records)
    df = to_frame(records)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    means = cell_means(df)
    gaps = generalisation_gap(df)
    robust = robustness_summary(corruption_table(df, baseline=baseline))
    depth = depth_frame(records)
    layer_labels = set(depth["layer_label"]) if len(depth) else set()
    rows = []
    plain = df[~df["encoder"].isin(layer_labels) & df["protocol"].isin(IN_DOMAIN)
               & ~df["dataset"].str.startswith(("shift:", "corrupt:"))]
    for (encoder, dataset), _ in plain.groupby(["encoder", "dataset"], sort=True):
        gap = gaps[(gaps["encoder"] == encoder) & (gaps["source"] == dataset) & (gaps["protocol"] == "linear")]
        rob = robust[(robust["encoder"] == encoder) & (robust["dataset"] == dataset) & (robust["protocol"] == "knn")]
        rows.append({
            "encoder": encoder, "dataset": dataset,
            **{col: float(means.get((encoder, dataset, proto), np.nan)) for col, proto in (
                ("knn", "knn"), ("linear", "linear"), ("labeleff auc", "labeleff"), ("nmi", "cluster"),
                ("map@r", "retrieval"))},
            "shift to": gap["target"].iloc[0] if len(gap) else "",
            "shift linear": float(gap["cross_domain"].iloc[0]) if len(gap) else np.nan,
            "gap": float(gap["gap"].iloc[0]) if len(gap) else np.nan,
            "corrupted knn": float(rob["corrupted"].iloc[0]) if len(rob) else np.nan,
            "drop": float(rob["drop"].iloc[0]) if len(rob) else np.nan,
            "best layer (depth)": _best_layer(depth, encoder, dataset),
            "mce": float(rob["mce"].iloc[0]) if len(rob) else np.nan,
        })
    columns = [*COLUMNS[:-1], "mce", COLUMNS[-1]] if baseline else COLUMNS
    return pd.DataFrame(rows, columns=[*COLUMNS, "mce"])[columns]


def _best_layer(depth: pd.DataFrame, encoder: str, dataset: str) -> str:
    """``i/n (d)`` of the layer with the best mean linear accuracy (relative depth d), or "" without layers."""
    if depth.empty:
        return ""
    mine = depth[(depth["encoder"] == encoder) & (depth["dataset"] == dataset) & (depth["protocol"] == "linear")
                 & (depth["status"] == "ok")]
    if mine.empty:
        return ""
    means = mine.groupby(["layer", "layers", "relative_depth"])["value"].mean().reset_index()
    best = means.loc[means["value"].idxmax()]
    return f"{int(best['layer'])}/{int(best['layers']) - 1} ({best['relative_depth']:.2f})"


def profile_markdown(table: pd.DataFrame) -> str:
    """The profile as GitHub markdown, fractions shown in percent (AUC, NMI and mAP@R x 100 too)."""
    from benchmark.leaderboards.grid import github_table
    from benchmark.leaderboards.tables import md_escape

    if table.empty:
        return "(no profile records)"
    text = table.copy()
    for col in text.columns:
        if col in ("encoder", "dataset", "shift to", "best layer (depth)"):
            text[col] = text[col].map(lambda v: md_escape(str(v)) if v else "–")
        else:
            text[col] = text[col].map(lambda v: "–" if pd.isna(v) else f"{v * 100:.1f}")
    note = NOTE + (MCE_NOTE if "mce" in text.columns else "")
    return github_table(list(text.columns), text.astype(str).values.tolist()) + "\n\n" + note


NOTE = ("Percent. knn, linear: top-1 on the dataset's test split. labeleff auc: area under linear-probe accuracy "
        "against log2 labels per class (1 to all, 5 draws each), normalised to [0, 100]. nmi: k-means (k = "
        "classes, 5 seeds) against the labels. map@r: test samples querying the train split by cosine, relevant = "
        "same class (Musgrave et al. 2020). shift linear: the linear probe trained on the dataset and tested on "
        "`shift to`'s test split (classes aligned by name); gap: in-domain linear minus that. corrupted knn: kNN "
        "top-1 on the test split corrupted (every kind of the modality at the profiled severities), averaged; "
        "drop: clean minus corrupted. best layer: the layer (of 0..n-1) with the best linear top-1, and its "
        "relative depth.")
MCE_NOTE = (" mce: mean corruption error against the baseline encoder (its kNN errors under each kind over the "
            "baseline's, averaged over kinds, x 100: 100 = as robust as the baseline, lower is better).")
