"""Robustness and domain-shift figures over the long-form leaderboard frame
(:func:`benchmark.leaderboards.tables.to_frame`: one row per record with ``encoder``, ``dataset``, ``protocol``,
``status``, ``value`` = the primary metric, e.g. top-1 accuracy).

- :func:`corruption_table`: per (encoder, clean dataset, protocol, corruption kind), the clean accuracy, the
  accuracy under corruption averaged over the severities present, the drop (clean minus corrupted), and with a
  ``baseline`` encoder the corruption error of Hendrycks & Dietterich (ICLR 2019): ``CE = sum_s E_s / sum_s
  E_s(baseline)`` with ``E = 1 - accuracy``, and the relative CE ``sum_s (E_s - E_clean) / sum_s (E_s(baseline)
  - E_clean(baseline))``, over the severities both have. 1.0 means as robust as the baseline; lower is better.
- :func:`robustness_summary`: the same averaged over kinds (mean drop, mCE, relative mCE).
- :func:`generalisation_gap`: per ``shift:A>B`` cell, in-domain minus cross-domain accuracy. In-domain is the
  same encoder and protocol on A (``reference="source"``: the model's own test domain, as WILDS reports ID vs
  OOD) or on B (``reference="target"``: what training on the target itself reaches).

Cells are read from their labels (``corrupt:digits[kind=jpeg,severity=3]``, ``shift:digits>mnist5k``): the clean
or in-domain dataset's label is rebuilt from the prefixed options (``base.seed=1`` -> ``digits[seed=1]``), as
the catalog labels that dataset on its own. Only ``status == "ok"`` rows count; seeds (and corruption seeds) are
averaged. A missing partner cell gives NaN, never a made-up number.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import OptionError
from benchmark.options import parse

CORRUPT, SHIFT = "corrupt:", "shift:"
KEYS = ["encoder", "dataset", "protocol"]
CORRUPTION_COLUMNS = ["encoder", "dataset", "protocol", "kind", "severities", "clean", "corrupted", "drop", "ce",
                      "relative_ce"]
SUMMARY_COLUMNS = ["encoder", "dataset", "protocol", "kinds", "clean", "corrupted", "drop", "mce", "relative_mce"]
GAP_COLUMNS = ["encoder", "dataset", "protocol", "source", "target", "in_domain", "cross_domain", "gap"]


def _inner_label(name: str, options: dict[str, str], prefix: str) -> str:
    """The label of an inner dataset from a family label's prefixed options (already sorted and non-default)."""
    own = [f"{k[len(prefix):]}={v}" for k, v in options.items() if k.startswith(prefix)]
    return f"{name}[{','.join(own)}]" if own else name


def parse_corrupt(label: str) -> tuple[str, str, int] | None:
    """``corrupt:D[...]`` -> (clean dataset label, kind, severity); None for any other label."""
    if not label.startswith(CORRUPT):
        return None
    req = parse(label)
    kind, severity = req.options.get("kind"), req.options.get("severity")
    if kind is None or severity is None:
        return None
    return _inner_label(req.name[len(CORRUPT):], dict(req.options), "base."), kind, int(severity)


def parse_shift(label: str) -> tuple[str, str] | None:
    """``shift:A>B[...]`` -> (source label, target label); None for any other label."""
    if not label.startswith(SHIFT):
        return None
    req = parse(label)
    source, sep, target = req.name[len(SHIFT):].partition(">")
    if not sep:
        return None
    options = dict(req.options)
    return _inner_label(source, options, "source."), _inner_label(target, options, "target.")


def cell_means(df: pd.DataFrame) -> pd.Series:
    """Mean primary metric per (encoder, dataset, protocol) over the ok rows (seeds averaged)."""
    ok = df[(df["status"] == "ok") & df["value"].notna()]
    return ok.groupby(KEYS)["value"].mean()


def corruption_table(df: pd.DataFrame, baseline: str | None = None) -> pd.DataFrame:
    """One row per (encoder, clean dataset, protocol, kind); see the module docstring. ``baseline`` names an
    encoder of ``df`` (OptionError when it has no corrupted cell)."""
    means = cell_means(df)
    rows = []
    for (encoder, dataset, protocol), value in means.items():
        parsed = parse_corrupt(dataset)
        if parsed is not None:
            rows.append({"encoder": encoder, "dataset": parsed[0], "protocol": protocol, "kind": parsed[1],
                         "severity": parsed[2], "accuracy": value})
    if not rows:
        return pd.DataFrame(columns=CORRUPTION_COLUMNS)
    cells = pd.DataFrame(rows).groupby(["encoder", "dataset", "protocol", "kind", "severity"])["accuracy"].mean()
    if baseline is not None and baseline not in cells.index.get_level_values("encoder"):
        raise OptionError(f"baseline encoder {baseline!r} has no corrupted cell; encoders with some: "
                          f"{', '.join(sorted(set(cells.index.get_level_values('encoder'))))}")
    out = []
    for (encoder, dataset, protocol, kind), by_severity in cells.groupby(level=[0, 1, 2, 3]):
        acc = by_severity.droplevel([0, 1, 2, 3])
        clean = means.get((encoder, dataset, protocol), np.nan)
        ce, relative = (np.nan, np.nan)
        if baseline is not None:
            ce, relative = _corruption_error(cells, means, baseline, (dataset, protocol, kind), acc, clean)
        out.append({"encoder": encoder, "dataset": dataset, "protocol": protocol, "kind": kind,
                    "severities": len(acc), "clean": clean, "corrupted": acc.mean(), "drop": clean - acc.mean(),
                    "ce": ce, "relative_ce": relative})
    return pd.DataFrame(out, columns=CORRUPTION_COLUMNS)


def _corruption_error(cells: pd.Series, means: pd.Series, baseline: str, where: tuple[str, str, str],
                      acc: pd.Series, clean: float) -> tuple[float, float]:
    """(CE, relative CE) of one encoder's accuracies by severity ``acc`` against the baseline's on the severities
    both have; NaN where the baseline lacks them or its errors sum to zero."""
    dataset, protocol, kind = where
    try:
        base = cells.loc[(baseline, dataset, protocol, kind)]
    except KeyError:
        return np.nan, np.nan
    common = acc.index.intersection(base.index)
    if common.empty:
        return np.nan, np.nan
    err, base_err = 1.0 - acc.loc[common], 1.0 - base.loc[common]
    ce = err.sum() / base_err.sum() if base_err.sum() > 0 else np.nan
    base_clean = means.get((baseline, dataset, protocol), np.nan)
    base_excess = (base_err - (1.0 - base_clean)).sum()
    relative = (err - (1.0 - clean)).sum() / base_excess if base_excess > 0 else np.nan
    return float(ce), float(relative)


def robustness_summary(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`corruption_table` averaged over kinds: one row per (encoder, clean dataset, protocol) with the
    number of kinds, clean accuracy, mean corrupted accuracy, mean drop, mCE and relative mCE."""
    if table.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    grouped = table.groupby(KEYS, sort=True)
    out = grouped.agg(kinds=("kind", "nunique"), clean=("clean", "first"), corrupted=("corrupted", "mean"),
                      drop=("drop", "mean"), mce=("ce", "mean"), relative_mce=("relative_ce", "mean"))
    return out.reset_index()[SUMMARY_COLUMNS]


def generalisation_gap(df: pd.DataFrame, reference: str = "source") -> pd.DataFrame:
    """One row per ``shift:A>B`` cell: in-domain accuracy (on A for ``reference="source"``, on B for
    ``"target"``), cross-domain accuracy and the gap (in-domain minus cross-domain; NaN without the in-domain
    cell)."""
    if reference not in ("source", "target"):
        raise OptionError(f"generalisation gap: reference must be source or target, got {reference!r}")
    means = cell_means(df)
    out: list[dict[str, Any]] = []
    for (encoder, dataset, protocol), cross in means.items():
        parsed = parse_shift(dataset)
        if parsed is None:
            continue
        source, target = parsed
        in_domain = means.get((encoder, source if reference == "source" else target, protocol), np.nan)
        out.append({"encoder": encoder, "dataset": dataset, "protocol": protocol, "source": source,
                    "target": target, "in_domain": in_domain, "cross_domain": cross, "gap": in_domain - cross})
    return pd.DataFrame(out, columns=GAP_COLUMNS)
