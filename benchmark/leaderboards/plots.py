"""Leaderboard plots (matplotlib, headless Agg), each saved as PNG and SVG: accuracy against samples/s with the
Pareto front, per-dataset bars with 95% CI whiskers for each protocol, and kNN accuracy against pretraining
wall time for the methods.

Each plot has a ``*_figure`` function (DataFrame in, :class:`~matplotlib.figure.Figure` out: what tests
inspect) and a ``plot_*`` function that saves it into a folder and returns the paths written. Input frames are
the long form of :func:`benchmark.leaderboards.tables.to_frame` (values are fractions; plots show percent), the
points of :func:`quality_throughput_points` and of :func:`methods_points`. Every label is placed by
:func:`benchmark.leaderboards.labels.place_labels` (no overlaps, nothing cut) and shown literally.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.errors import MissingDependency
from benchmark.leaderboards.labels import mpl_text, place_labels
from benchmark.leaderboards.methods import as_mapping, run_distinctions, training_time
from benchmark.results.record import Record
from benchmark.results.throughput import ThroughputRecord

if TYPE_CHECKING:
    from benchmark.leaderboards.pageinfo import PlotNames


def pyplot() -> Any:
    """matplotlib.pyplot on the headless Agg backend, or one line saying how to install matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependency("plots need matplotlib: pip install 'repbench[plots]'") from None
    matplotlib.use("Agg")  # headless: no display, same pixels everywhere
    import matplotlib.pyplot as plt

    return plt


def save(fig: Any, out_dir: Path | str, stem: str) -> list[Path]:
    """Write ``fig`` as ``<stem>.png`` (150 dpi) and ``<stem>.svg`` into ``out_dir`` (atomically; created when
    missing), close it, and return the two paths. ``bbox_inches="tight"`` keeps outside legends and labels in."""
    from benchmark.storage.atomic import atomic_path

    paths = []
    plt = pyplot()
    # the same figure gives the same bytes: no date in the SVG and a fixed salt for its clip-path ids (random per
    # process otherwise), so re-rendering unchanged records leaves the published files unchanged
    with plt.rc_context({"svg.hashsalt": "repbench"}):
        for ext in ("png", "svg"):
            target = Path(out_dir) / f"{stem}.{ext}"
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight", metadata={"Date": None}
                            if ext == "svg" else None)
            paths.append(target)
    plt.close(fig)
    return paths


# --- accuracy vs throughput --------------------------------------------------------------------------------------
def pareto_front(points: pd.DataFrame, x: str = "samples_per_s", y: str = "accuracy") -> pd.DataFrame:
    """The rows no other row beats on both ``x`` and ``y`` (higher is better on both; a row that ties another
    on both stays), sorted by ``x``: the fastest encoder for each level of accuracy."""
    keep = []
    for _, row in points.iterrows():
        dominated = ((points[x] >= row[x]) & (points[y] >= row[y]) & ((points[x] > row[x]) | (points[y] > row[y])))
        keep.append(not dominated.any())
    return points[keep].sort_values([x, y])


def quality_throughput_points(frame: pd.DataFrame, throughput: Iterable[ThroughputRecord], *,
                              protocol: str, device: str | None = None) -> pd.DataFrame:
    """One row per encoder that has both: ``encoder``, ``accuracy`` (mean primary metric, percent, over the
    datasets of ``protocol`` that every such encoder has, seeds averaged first), ``samples_per_s`` (its fastest
    ok throughput measurement on ``device``, default: the device with the most encoders) and ``datasets``
    (how many datasets the mean is over). Encoders missing a common dataset are left out, not averaged on fewer."""
    recs = list(throughput)
    ok = [t for t in recs if t.status == "ok"]
    if device is None and ok:
        device = pd.Series([t.device for t in ok]).value_counts().index[0]
    speed = pd.DataFrame([(t.label, t.metrics["samples_per_s"]) for t in ok if t.device == device],
                         columns=["encoder", "samples_per_s"]).groupby("encoder")["samples_per_s"].max()
    cells = frame[(frame["protocol"] == protocol) & (frame["status"] == "ok") & frame["value"].notna()
                  & frame["encoder"].isin(speed.index)]
    wide = cells.groupby(["encoder", "dataset"])["value"].mean().unstack("dataset")
    if wide.empty:
        return pd.DataFrame(columns=["encoder", "accuracy", "samples_per_s", "datasets"])
    common = wide.columns[wide.notna().all()]
    acc = wide[common].mean(axis=1) * 100
    out = pd.DataFrame({"encoder": acc.index, "accuracy": acc.values,
                        "samples_per_s": speed.reindex(acc.index).values, "datasets": len(common)})
    return out.dropna(subset=["accuracy"]).reset_index(drop=True)


def accuracy_throughput_figure(points: pd.DataFrame, *, title: str = "Accuracy vs throughput",
                               ylabel: str = "accuracy (%)") -> Any:
    """Scatter of ``accuracy`` against ``samples_per_s`` (log x), the Pareto front as a step line, each point
    labelled with its ``encoder``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    front = pareto_front(points)
    on_front = points.index.isin(front.index)
    ax.scatter(points.loc[~on_front, "samples_per_s"], points.loc[~on_front, "accuracy"], s=28, color="tab:blue",
               zorder=3, label="encoder")
    ax.scatter(front["samples_per_s"], front["accuracy"], s=36, color="tab:red", zorder=4, label="Pareto front")
    # the front as the frontier people read it: from each front point, flat to the next faster one
    ax.step(front["samples_per_s"], front["accuracy"], where="pre", color="tab:red", lw=1.2, alpha=0.8, zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("samples/s (log scale; higher is faster)")
    ax.set_ylabel(mpl_text(ylabel))
    ax.set_title(mpl_text(title))
    ax.grid(True, which="both", alpha=0.25)
    ax.margins(x=0.25, y=0.18)
    ax.legend(loc="lower left", fontsize=8)
    fx, fy = list(front["samples_per_s"]), list(front["accuracy"])
    steps = [seg for i in range(1, len(fx))
             for seg in ((fx[i - 1], fy[i - 1], fx[i - 1], fy[i]), (fx[i - 1], fy[i], fx[i], fy[i]))]
    place_labels(ax, list(points["samples_per_s"]), list(points["accuracy"]), [str(e) for e in points["encoder"]],
                 avoid=steps)
    return fig


def plot_accuracy_throughput(points: pd.DataFrame, out_dir: Path | str, *, stem: str = "accuracy-vs-throughput",
                             title: str = "Accuracy vs throughput", ylabel: str = "accuracy (%)") -> list[Path]:
    """:func:`accuracy_throughput_figure` saved as ``<stem>.png`` and ``.svg``; [] when there are no points."""
    if points.empty:
        return []
    return save(accuracy_throughput_figure(points, title=title, ylabel=ylabel), out_dir, stem)


# --- per-dataset bars --------------------------------------------------------------------------------------------
def bar_data(frame: pd.DataFrame, protocol: str) -> pd.DataFrame:
    """The bars of one protocol: ``dataset``, ``encoder``, ``value`` (percent, mean over seeds), ``low``/``high``
    (the 95% CI in percent: the record's own for one seed; over several seeds, mean ± 1.96 standard errors)."""
    ok = frame[(frame["protocol"] == protocol) & (frame["status"] == "ok") & frame["value"].notna()]
    rows = []
    for (dataset, encoder), g in ok.groupby(["dataset", "encoder"], sort=True):
        value = g["value"].mean() * 100
        if len(g) == 1:
            lo, hi = g["ci_low"].iloc[0], g["ci_high"].iloc[0]
            lo, hi = (lo * 100, hi * 100) if pd.notna(lo) and pd.notna(hi) else (value, value)
        else:
            half = 1.96 * g["value"].std() / len(g) ** 0.5 * 100
            lo, hi = value - half, value + half
        rows.append({"dataset": dataset, "encoder": encoder, "value": value, "low": lo, "high": hi})
    return pd.DataFrame(rows, columns=["dataset", "encoder", "value", "low", "high"])


def _in_order(present: Iterable[str], order: Sequence[str]) -> list[str]:
    """``present`` in ``order`` (a table's rank order), anything it lacks after, sorted."""
    have = set(present)
    return [k for k in order if k in have] + sorted(have - set(order))


def axis_of(frame: pd.DataFrame, protocol: str) -> str:
    """The axis label of ``protocol``'s cells in ``frame`` (its one primary metric, named)."""
    from benchmark.leaderboards.pageinfo import axis_label

    metrics = frame.loc[frame["protocol"] == protocol, "metric"].dropna().unique() if "metric" in frame else []
    return axis_label(protocol, str(metrics[0]) if len(metrics) == 1 else None)


def dataset_bars_figure(frame: pd.DataFrame, protocol: str, title: str | None = None,
                        names: PlotNames | None = None) -> Any:
    """Grouped bars: datasets on x, one bar per encoder (same colour across datasets), CI whiskers; past
    :data:`MAX_BAR_GROUPS` datasets a heatmap of encoders by datasets instead (:func:`_dataset_heatmap`). With
    ``names`` (:func:`benchmark.leaderboards.pageinfo.plot_names`) encoders and datasets show by their tables'
    short labels in rank (and column) order, each encoder in its colour on the whole board, and the axis names
    the metric; without, full labels sorted and the metric of the frame's ``metric`` column."""
    plt = pyplot()
    bars = bar_data(frame, protocol)
    if names is not None:
        bars["encoder"] = [names.encoders.get(e, e) for e in bars["encoder"]]
        bars["dataset"] = [names.datasets.get(d, d) for d in bars["dataset"]]
    datasets = _in_order(bars["dataset"].unique(), names.dataset_order if names else ())
    encoders = _in_order(bars["encoder"].unique(), names.encoder_order if names else ())
    if len(datasets) > MAX_BAR_GROUPS:
        return _dataset_heatmap(bars, datasets, encoders, protocol, title,
                                names.ylabel if names else axis_of(frame, protocol))
    width = 0.8 / max(len(encoders), 1)
    fig, ax = plt.subplots(figsize=(min(12.0, max(6.0, 1.2 + len(datasets) * (0.45 * len(encoders) + 0.5))), 4.5))
    palette = names.palette if names is not None and names.palette else encoders  # a colour per encoder of the board
    colours = plt.get_cmap("tab20" if len(palette) > 10 else "tab10")
    for k, enc in enumerate(encoders):  # k places the bar in its group; the palette gives its colour
        colour = colours((palette.index(enc) if enc in palette else k) % colours.N)
        sub = bars[bars["encoder"] == enc].set_index("dataset").reindex(datasets).dropna(subset=["value"])
        xs = [datasets.index(d) - 0.4 + width * (k + 0.5) for d in sub.index]
        yerr = [(sub["value"] - sub["low"]).clip(lower=0), (sub["high"] - sub["value"]).clip(lower=0)]
        ax.bar(xs, sub["value"], width=width * 0.92, color=colour, label=mpl_text(str(enc)),
               yerr=yerr, capsize=2, error_kw={"lw": 0.8, "ecolor": "0.2"})
    ax.set_xticks(range(len(datasets)))
    # a label's options go on a second line: "fashion-mnist\n[test_size=1000,train_size=3000]"
    ax.set_xticklabels([mpl_text(str(d)).replace("[", "\n[", 1) for d in datasets], fontsize=8)
    ax.set_ylabel(mpl_text(names.ylabel if names else axis_of(frame, protocol)))
    ax.set_title(mpl_text(f"{title or protocol}: per dataset (whiskers: 95% CI)"))
    ax.set_ylim(0, min(105.0, max(100.0, float(bars["high"].max()) + 3 if len(bars) else 100.0)))
    ax.grid(True, axis="y", alpha=0.25)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


MAX_BAR_GROUPS = 12  # past this many datasets, grouped bars are too thin to read: a heatmap instead


def _dataset_heatmap(bars: pd.DataFrame, datasets: list[str], encoders: list[str], protocol: str,
                     title: str | None, metric: str) -> Any:
    """Encoders (rows, rank order) by datasets (columns): each cell coloured and printed with its value; a
    missing cell stays blank (not a zero). For boards with more datasets than grouped bars can show; the CIs
    are in the tables."""
    import numpy as np

    plt = pyplot()
    grid = bars.pivot(index="encoder", columns="dataset", values="value").reindex(index=encoders, columns=datasets)
    cells = grid.to_numpy(dtype=float)
    values = np.ma.masked_invalid(cells)
    fig, ax = plt.subplots(figsize=(min(40.0, 2.5 + 0.42 * len(datasets)), 1.6 + 0.36 * len(encoders)))
    image = ax.imshow(values, aspect="auto", cmap="viridis", vmin=float(values.min()), vmax=float(values.max()))
    ax.set_xticks(range(len(datasets)))
    ax.set_xticklabels([mpl_text(str(d)) for d in datasets], rotation=90, fontsize=7)
    ax.set_yticks(range(len(encoders)))
    ax.set_yticklabels([mpl_text(str(e)) for e in encoders], fontsize=8)
    middle = (float(values.min()) + float(values.max())) / 2
    for (row, col), value in np.ndenumerate(cells):
        if np.isfinite(value):  # dark text on the light (high) end of viridis, light on the dark end
            ax.text(col, row, f"{value:.0f}", ha="center", va="center", fontsize=6,
                    color="black" if value > middle else "white")
    fig.colorbar(image, ax=ax, label=mpl_text(metric), fraction=0.03, pad=0.01)
    ax.set_title(mpl_text(f"{title or protocol}: per dataset (95% CIs in the table)"))
    return fig


def bar_groups(frame: pd.DataFrame) -> list[tuple[str, str | None]]:
    """The (protocol, modality) pairs that get a bar chart each: one per protocol, split by modality when the
    protocol's records span several (image and text datasets share no encoders, so one chart would be half
    empty); modality None when there is one."""
    ok = frame[(frame["status"] == "ok") & frame["value"].notna()]
    groups: list[tuple[str, str | None]] = []
    for protocol in sorted(ok["protocol"].unique()):
        modalities = sorted(ok.loc[ok["protocol"] == protocol, "modality"].dropna().unique())
        groups += [(protocol, m) for m in modalities] if len(modalities) > 1 else [(protocol, None)]
    return groups


def bars_stem(protocol: str, modality: str | None) -> str:
    """``bars-<protocol slug>[-<modality>]``."""
    from benchmark.results.files import slug

    return f"bars-{slug(protocol)}" + (f"-{slug(modality)}" if modality else "")


def plot_dataset_bars(frame: pd.DataFrame, out_dir: Path | str,
                      names: Mapping[tuple[str, str | None], PlotNames] | None = None
                      ) -> dict[tuple[str, str | None], list[Path]]:
    """One bar chart per :func:`bar_groups` pair, saved as :func:`bars_stem` ``.png/.svg``; the paths by pair.
    ``names``: :func:`benchmark.leaderboards.pageinfo.plot_names` of the board the plots go with; then only the
    board's own tables get bars (``repbench leaderboard --protocol cluster`` draws no kNN bars from the same
    records)."""
    out = {}
    for protocol, modality in bar_groups(frame):
        if names is not None and (protocol, modality) not in names:
            continue
        sub = frame if modality is None else frame[frame["modality"] == modality]
        title = protocol if modality is None else f"{protocol} ({modality})"
        named = (names or {}).get((protocol, modality))
        out[(protocol, modality)] = save(dataset_bars_figure(sub, protocol, title=title, names=named), out_dir,
                                         bars_stem(protocol, modality))
    return out


# --- methods: kNN accuracy vs pretraining wall time ---------------------------------------------------------------
def methods_points(records: Iterable[Record], protocol: str = "knn") -> pd.DataFrame:
    """One row per (encoder, evaluation dataset) with an ok ``protocol`` record (newest wins): ``encoder``,
    ``dataset``, ``label`` (the method for a pretraining run, else the encoder), ``backbone`` (a run's; "" for
    references), ``reference`` (raw pixels or random-init weights), ``accuracy`` (percent),
    ``seconds`` (the run's pretraining time: without the watch's checks where the run timed them apart, else its
    wall time; NaN for references such as pixels or random init), ``timed`` (whether the checks were left
    out) and ``detail`` (what tells the run apart from others of its method and backbone, `` · 2000 steps``,
    as :func:`benchmark.leaderboards.methods.run_distinctions` says it; "" for most)."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for rec in records:
        r = rec.to_json()
        if r.get("status") != "ok" or r["protocol"]["name"] != protocol or r.get("source") == "published":
            continue
        enc, value = r["encoder"], (r.get("metrics") or {}).get("top1")
        if not isinstance(value, (int, float)):
            continue
        key = (str(enc.get("label") or enc["name"]), str(r["dataset"].get("label") or r["dataset"]["name"]))
        if key in rows and rows[key]["created_at"] > str(r.get("created_at") or ""):
            continue
        pre = enc.get("pretraining") if isinstance(enc.get("pretraining"), Mapping) else None
        reference = enc.get("name") == "pixels" or str(enc.get("weights") or "").startswith("random-init")
        result = (pre or {}).get("result") or {}
        seconds, timed = training_time(as_mapping(result))
        label = str(pre.get("method")) if pre else key[0]
        rows[key] = {"encoder": key[0], "dataset": key[1], "label": label,
                     "backbone": str(pre.get("backbone")) if pre else "", "reference": reference,
                     "accuracy": value * 100,
                     "seconds": float("nan") if seconds is None else seconds,
                     "timed": timed, "detail": "", "created_at": str(r.get("created_at") or ""), "_pre": pre}
    # runs of one method and backbone: what tells them apart (" · 2000 steps"), as the tables say it
    for key, detail in run_distinctions({k: row["_pre"] for k, row in rows.items() if row["_pre"]}).items():
        rows[key]["detail"] = detail
    out = pd.DataFrame(list(rows.values()), columns=["encoder", "dataset", "label", "backbone", "reference",
                                                     "accuracy", "seconds", "timed", "detail", "created_at"])
    return out.drop(columns="created_at")


def methods_figure(points: pd.DataFrame, dataset: str, protocol: str = "knn") -> Any:
    """Pretraining runs on ``dataset`` as points (wall time, accuracy), references as dashed lines."""
    plt = pyplot()
    sub = points[points["dataset"] == dataset]
    runs = sub[sub["seconds"].notna()].copy()
    # references: raw pixels, random-init weights, and the runs' own backbones untrained; not every encoder
    refs = sub[sub["seconds"].isna() & (sub["reference"] | sub["encoder"].isin(set(runs["backbone"])))]
    from benchmark.leaderboards.methods import backbone_short  # the methods table's short names

    if runs["backbone"].nunique() > 1:  # several backbones: each label names its own, short (dino · resnet18)
        runs["label"] = runs["label"] + " · " + runs["backbone"].map(backbone_short)
    if "detail" in runs:  # and what tells apart runs of one method and backbone (· 2000 steps)
        runs["label"] = runs["label"] + runs["detail"]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    timed = runs["timed"].astype(bool) if "timed" in runs else pd.Series(False, index=runs.index)
    mixed = bool(timed.any() and not timed.all())
    hollow = ~timed if mixed else pd.Series(False, index=runs.index)
    ax.scatter(runs.loc[~hollow, "seconds"], runs.loc[~hollow, "accuracy"], s=32, color="tab:blue", zorder=3)
    if mixed:  # runs that did not time the watch's checks apart: their wall time includes them (hollow, said so)
        ax.scatter(runs.loc[hollow, "seconds"], runs.loc[hollow, "accuracy"], s=32, facecolors="none",
                   edgecolors="tab:blue", zorder=3, label="run whose time includes the watch's checks")
    if len(runs) and runs["seconds"].max() > 10 * max(runs["seconds"].min(), 1e-9):
        ax.set_xscale("log")
    for k, (_, ref) in enumerate(refs.sort_values("accuracy").iterrows()):
        ax.axhline(ref["accuracy"], ls="--", lw=1, color=plt.get_cmap("Dark2")(k % 8),
                   label=mpl_text(f"{'raw pixels' if ref['encoder'] == 'pixels' else backbone_short(ref['label'])}"
                                  f" (no pretraining): {ref['accuracy']:.1f}"))
    ax.set_xlabel("pretraining time without the watch's checks (s)" if timed.all() and len(runs) else
                  "pretraining wall time (s)" if not timed.any() else
                  "pretraining time (s): without the watch's checks, where the run timed them")
    ax.set_ylabel(f"{protocol} top-1 (%)")
    backbones = set(runs["backbone"])
    one = f" ({backbone_short(next(iter(backbones)))})" if len(backbones) == 1 else ""
    ax.set_title(mpl_text(f"Methods{one} on {dataset}: {protocol} accuracy vs pretraining time"))
    ax.grid(True, which="both", alpha=0.25)
    ax.margins(x=0.25, y=0.2)
    if len(refs) or mixed:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    lo, hi = ax.get_xlim()
    place_labels(ax, list(runs["seconds"]), list(runs["accuracy"]), [str(x) for x in runs["label"]],
                 avoid=[(lo, y, hi, y) for y in refs["accuracy"]])
    return fig


def plot_methods(records: Iterable[Record], out_dir: Path | str, protocol: str = "knn"
                 ) -> list[Path]:
    """One :func:`methods_figure` per evaluation dataset that has a pretraining run, saved as
    ``methods-<dataset slug>.png/.svg``."""
    from benchmark.results.files import slug

    points = methods_points(records, protocol)
    paths: list[Path] = []
    for dataset in sorted(points.loc[points["seconds"].notna(), "dataset"].unique()):
        paths += save(methods_figure(points, dataset, protocol), out_dir, f"methods-{slug(dataset)}")
    return paths
