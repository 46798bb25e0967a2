"""The depth profile: probe accuracy (kNN, linear, any protocol) against relative depth, per encoder.

Built from ordinary evaluation records of layer encoders (``timm/resnet18[layers=all]`` gives one per depth): each
such record's ``encoder.layer`` block says the layer index, the number of layers and the relative depth
(:func:`benchmark.encoders.layers.layer_block`). :func:`depth_frame` is the leaderboard's long form
(:func:`~benchmark.leaderboards.tables.to_frame`, newest record per cell and seed) restricted to those records,
with the encoder column reduced to the label the layers share and the depth columns added; :func:`depth_table`
and :func:`depth_markdown` lay it out, :func:`plot_depth` draws it (PNG and SVG).
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.encoders.layers import base_label, layer_of
from benchmark.leaderboards.labels import mpl_text
from benchmark.leaderboards.tables import md_escape, to_frame
from benchmark.options import parse
from benchmark.results.record import Record

DEPTH_COLUMNS = ["layer", "layers", "relative_depth", "layer_label"]
#: Protocols shown first (then any others, alphabetically).
PREFERRED = ("knn", "linear")


def depth_frame(records: Iterable[Record]) -> pd.DataFrame:
    """The long-form frame of the records that carry a layer: ``to_frame``'s columns, with ``encoder`` the label
    without its ``layer`` option, plus ``layer`` (index), ``layers`` (count), ``relative_depth`` and
    ``layer_label`` (the full encoder label). Records without a layer block are left out."""
    typed = list(records)
    depth: dict[str, Mapping[str, Any]] = {}
    for r in typed:
        block = layer_of(r.encoder.extra)
        if block is not None:
            depth[r.encoder.display] = block
    df = to_frame(typed)
    df = df[df["encoder"].isin(list(depth))].copy()
    if df.empty:
        return pd.DataFrame(columns=[*df.columns, *DEPTH_COLUMNS])
    df["layer_label"] = df["encoder"]
    df["encoder"] = df["layer_label"].map(base_label)
    df["layer"] = df["layer_label"].map(lambda label: int(depth[label]["index"]))
    df["layers"] = df["layer_label"].map(lambda label: int(depth[label]["count"]))
    df["relative_depth"] = df["layer_label"].map(lambda label: float(depth[label]["relative_depth"]))
    return df.sort_values(["encoder", "dataset", "protocol", "layer", "seed"]).reset_index(drop=True)


def _protocol_order(protocols: Iterable[str]) -> list[str]:
    """Protocol labels with kNN and linear (whatever their options) first, then the others by name."""
    def key(label: str) -> tuple[int, str]:
        name = parse(label).name
        return (PREFERRED.index(name) if name in PREFERRED else len(PREFERRED), label)
    return sorted(set(protocols), key=key)


def _cell(group: pd.DataFrame) -> str:
    ok = group[group["status"] == "ok"]
    if ok.empty or ok["value"].isna().all():
        return "error"
    value = ok["value"].mean() * 100
    if len(ok) == 1 and pd.notna(ok["ci_low"].iloc[0]):
        return f"{value:.1f} ± {(ok['ci_high'].iloc[0] - ok['ci_low'].iloc[0]) * 50:.1f}"
    return f"{value:.1f}" if len(ok) == 1 else f"{value:.1f} ± {ok['value'].std() * 100:.1f} (n={len(ok)})"


def depth_table(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (encoder, dataset, layer) with its relative depth and one column per protocol (accuracy in
    percent, ± half the 95% CI), the best layer of each (encoder, dataset, protocol) marked with ``*``."""
    if df.empty:
        return pd.DataFrame()
    keys = ["encoder", "dataset", "layer", "relative_depth"]
    cells = df.groupby([*keys, "protocol"], sort=True).apply(_cell, include_groups=False).unstack("protocol")
    ok = df[df["status"] == "ok"]
    means = ok.groupby([*keys, "protocol"])["value"].mean()
    for (*_, prot), group in means.groupby(["encoder", "dataset", "protocol"]):
        best = group.idxmax()
        cells.loc[best[:4], prot] = f"{cells.loc[best[:4], prot]} *"
    cells = cells[_protocol_order(cells.columns)].fillna("–").reset_index()
    cells["relative_depth"] = cells["relative_depth"].map(lambda d: f"{d:.2f}")
    cells.columns.name = None
    return cells.rename(columns={"relative_depth": "depth"})


#: The note under the markdown table.
NOTE = ("depth = layer / (layers - 1): 0 is the first stage or block (text: the embeddings), 1 the final "
        "representation; ± is half the 95% confidence interval; * marks the best layer per protocol.")


def depth_markdown(df: pd.DataFrame) -> str:
    """:func:`depth_table` as GitHub markdown (every label escaped) with :data:`NOTE` below it."""
    from tabulate import tabulate

    t = depth_table(df)
    if t.empty:
        return "(no records of layer encoders: evaluate e.g. 'timm/resnet18[layers=all]')"
    t = t.map(lambda v: md_escape(v) if isinstance(v, str) else v).rename(columns=md_escape)
    text = tabulate(t, headers="keys", tablefmt="github", disable_numparse=True, showindex=False)
    return f"{text}\n\n{NOTE}"


def plot_depth(df: pd.DataFrame, stem: Path | str, protocols: Sequence[str] | None = None) -> list[Path]:
    """Draw accuracy (%) against relative depth: one panel per (dataset, protocol), one line per encoder with
    its 95% CI band; write ``<stem>.png`` and ``<stem>.svg`` atomically and return their paths."""
    from benchmark.leaderboards.plots import pyplot, save

    plt = pyplot()

    ok = df[(df["status"] == "ok") & df["value"].notna()]
    if ok.empty:
        raise ValueError("no successful records of layer encoders to plot")
    datasets = sorted(ok["dataset"].unique())
    prots = list(protocols) if protocols else _protocol_order(ok["protocol"].unique())
    fig, axes = plt.subplots(len(datasets), len(prots), figsize=(4.2 * len(prots), 3.4 * len(datasets)),
                             squeeze=False, sharex=True, sharey="row")
    encoders = sorted(ok["encoder"].unique())
    colours = {e: plt.get_cmap("tab10")(i % 10) for i, e in enumerate(encoders)}
    for row, dset in enumerate(datasets):
        for col, prot in enumerate(prots):
            ax = axes[row][col]
            _panel(ax, ok[(ok["dataset"] == dset) & (ok["protocol"] == prot)], colours)
            ax.set_title(mpl_text(_title(dset, prot)), fontsize=9)
            ax.set_xlim(-0.03, 1.03)
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel("top-1 accuracy (%)")
            if row == len(datasets) - 1:
                ax.set_xlabel("relative depth (layer / (layers - 1))")
    handles = [plt.Line2D([], [], color=colours[e], marker="o", label=mpl_text(e)) for e in encoders]
    fig.legend(handles=handles, loc="lower center", ncol=1, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.04 + 0.035 * len(encoders), 1, 1))
    stem = Path(stem)
    return save(fig, stem.parent, stem.name)


def _title(dataset: str, protocol: str, width: int = 44) -> str:
    """A panel title that fits its panel: long labels (datasets with options) wrapped at commas or anywhere."""
    lines = textwrap.wrap(f"{dataset} / {protocol}".replace(",", ", "), width) or [""]
    return "\n".join(line.replace(", ", ",") for line in lines)


def _panel(ax: Any, data: pd.DataFrame, colours: Mapping[str, Any]) -> None:
    """One encoder per line: mean over seeds, CI band from the (single-seed) bootstrap interval."""
    for enc, group in data.groupby("encoder"):
        per_layer = group.groupby("relative_depth").agg(value=("value", "mean"), low=("ci_low", "mean"),
                                                         high=("ci_high", "mean"), n=("value", "size"))
        x = per_layer.index.to_numpy()
        ax.plot(x, per_layer["value"] * 100, marker="o", color=colours[enc], lw=1.5, ms=4)
        band = per_layer.dropna(subset=["low", "high"])
        if not band.empty:
            ax.fill_between(band.index.to_numpy(), band["low"] * 100, band["high"] * 100, color=colours[enc],
                            alpha=0.15, lw=0)
