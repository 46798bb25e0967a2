"""What a board's page says about itself, and the names its plots use: the same for every board (suites, the
methods board, throughput and profile folders).

* :func:`page_title`: the suite's name, else what the records are (pretraining methods, throughput, the
  protocols on the modalities), never the output folder's name.
* :func:`about_section`: when the records were made (the newest ``created_at``: the same records render the same
  page, never "now"), the repbench versions, the devices, and links to the files next to the page.
* :func:`how_to_read`: the legend every table shares (what ± means, the aggregate columns, and the dataset and
  encoder keys when every table has the same), shown once at the top; :func:`short_caption` is what stays under
  each table.
* :func:`plot_names`: per (protocol, modality), the tables' short labels in rank order and the metric's name, so a
  plot's legend reads like its table and its axis names the metric ("kNN top-1 accuracy (%)").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.leaderboards.aggregate import TITLES
from benchmark.leaderboards.grid import legend, unranked_text
from benchmark.leaderboards.model import Board, Table

#: How a primary metric is named on an axis and in titles.
METRIC_TITLES = {"top1": "top-1 accuracy", "top5": "top-5 accuracy", "ndcg@10": "nDCG@10", "map": "MAP",
                 "map@r": "mAP@R", "mrr@10": "MRR@10", "spearman": "Spearman correlation", "max_ap": "max AP",
                 "nmi": "NMI", "ari": "ARI", "auc": "AUC", "accuracy": "accuracy", "main_score": "main score"}
#: How a protocol is named before its metric ("kNN top-1 accuracy").
PROTOCOL_TITLES = {"knn": "kNN", "linear": "linear-probe", "fewshot": "few-shot", "finetune": "fine-tuned",
                   "labeleff": "label-efficiency", "cluster": "k-means", "retrieval": "retrieval",
                   "qrels-retrieval": "retrieval", "rerank": "reranking", "sts": "STS",
                   "pairclass": "pair-classification"}
#: The files of a board folder the page links to, when they are there.
LINKED = (("records (CSV, one row per record)", "records.csv"), ("board (JSON)", "leaderboard.json"),
          ("tables (markdown)", "leaderboard.md"), ("tables (LaTeX)", "leaderboard.tex"),
          ("throughput (CSV)", "throughput.csv"))

CELLS_NOTE = ("Cells: the primary metric in percent ± half the width of its 95% confidence interval (bootstrap over "
              "test examples; Student t over draws for few-shot), or ± the standard deviation over seeds where "
              "(n=…) shows; ★ marks the best of each column.")
AGGREGATES_NOTE = ("Ranks use only the datasets every ranked encoder has; encoders lacking one are listed under "
                   "their table, unranked. borda: Borda count (per dataset, n − rank among the n ranked encoders, "
                   "ties sharing the average rank; summed); rank: mean rank (1 = best); mean: mean score; norm: "
                   "mean of (score − floor)/(100 − floor), the floor named under each table.")


def axis_label(protocol: str, metric: str | None) -> str:
    """``kNN top-1 accuracy (%)``; an unknown protocol or metric by its own name."""
    what = METRIC_TITLES.get(metric or "", metric or "primary metric")
    return f"{PROTOCOL_TITLES.get(protocol, protocol)} {what} (%)"


def page_title(board: Board, records: Sequence[Any] = (), throughput: Sequence[Any] = ()) -> str:
    """The page's name: ``offline-text-v2`` for a suite, ``pretraining methods`` for pretraining runs,
    ``throughput`` for throughput alone, else ``knn, linear on image`` (the protocols on the modalities)."""
    if board.suite:
        return f"repbench: suite {board.suite['name']} (version {board.suite['version']})"
    if any(isinstance(getattr(r, "encoder", None) and r.encoder.extra.get("pretraining"), dict) for r in records):
        return "repbench: pretraining methods"
    if not board.tables:
        return "repbench: throughput" if throughput else "repbench leaderboard"
    protocols = list(dict.fromkeys(t.protocol for t in board.tables))
    modalities = sorted({t.modality for t in board.tables})
    return f"repbench: {', '.join(protocols)} on {' and '.join(modalities)}"


def _environment(r: Any) -> dict[str, Any]:
    env = getattr(r, "environment", None)
    return env if isinstance(env, dict) else {}


def _device(r: Any) -> str | None:
    env = _environment(r)
    device = getattr(r, "device", None) or env.get("device")
    name = getattr(r, "device_name", None) or env.get("device_name")
    return f"{device} ({name})" if device and name else device or name


def _when(stamp: str) -> str:
    """``2026-12-05 02:35:48 UTC`` for ``2026-12-05T02:35:48+00:00``."""
    text = stamp.replace("T", " ")
    return text[:-6] + " UTC" if text.endswith("+00:00") else text[:-1] + " UTC" if text.endswith("Z") else text


def about_text(records: Sequence[Any], throughput: Sequence[Any] = ()) -> str:
    """When, with which repbench and on which devices the records were made (from the records alone)."""
    every = [*records, *throughput]
    stamps = sorted(str(r.created_at) for r in every if getattr(r, "created_at", None))
    versions = sorted({str(_environment(r)["repbench"]) for r in every if _environment(r).get("repbench")})
    devices = sorted({d for d in (_device(r) for r in every) if d})
    from benchmark.plugins import dist_version

    counts = [f"{n} {what} record(s)" for n, what in ((len(records), "evaluation"), (len(throughput), "throughput"))
              if n]
    lines = [(" and ".join(counts) or "No records")
             + (f", the newest made {_when(stamps[-1])}" if stamps else "") + "."]
    lines.append(f"Made with repbench {', '.join(versions) or 'unknown'}; page rendered by repbench "
                 f"{dist_version('repbench') or 'unknown'}.")
    if devices:
        lines.append(f"Device{'s' if len(devices) > 1 else ''}: {'; '.join(devices)}.")
    return "\n".join(lines)


def about_section(out: Path, records: Sequence[Any], throughput: Sequence[Any] = ()) -> Any:
    """The "About these results" section: :func:`about_text` and links to the (non-empty) files of ``out``."""
    from benchmark.leaderboards.page import Section

    links = [(text, name) for text, name in LINKED if (out / name).is_file() and (out / name).stat().st_size]
    return Section("About these results", None, caption=about_text(records, throughput), links=links)


def _shared(board: Board) -> tuple[set[str], list[str]]:
    """The legend lines every table has (dataset and encoder keys), to show once."""
    lines = [legend(t)[1:] for t in board.tables]
    common = set(lines[0]).intersection(*lines[1:]) if len(lines) > 1 else set()
    return common, [line for line in (lines[0] if lines else []) if line in common]


def how_to_read(board: Board) -> Any:
    """The legend the tables share, once; None for a board without tables."""
    from benchmark.leaderboards.page import Section

    if not board.tables:
        return None
    return Section("How to read the tables", None, caption="\n\n".join([CELLS_NOTE, AGGREGATES_NOTE,
                                                                          *_shared(board)[1]]))


def short_caption(t: Table, board: Board) -> str:
    """What stays under one table: how it is ranked and its floor, its own dataset/encoder keys, the unranked."""
    common = _shared(board)[0]
    parts = [f"Ranked by {TITLES[t.ranked_by]} over the {len(t.columns)} dataset(s) every ranked encoder has; "
             f"floor of norm: {t.floor}; cells: {axis_label(t.protocol, t.metric)}.",
             *(line for line in legend(t)[1:] if line not in common)]
    if t.unranked:
        parts.append("Not ranked (missing cells): " + "; ".join(f"{r.key}: {unranked_text(r, t)}"
                                                                 for r in t.unranked))
    return "\n\n".join(parts)


@dataclass
class PlotNames:
    """How one (protocol, modality) plot names things: full label -> short key, keys in rank order, the axis,
    and the board's palette order (every encoder key of the board, sorted: an encoder keeps its colour in every
    plot of the board, whatever its rank in each)."""

    encoders: dict[str, str] = field(default_factory=dict)
    encoder_order: list[str] = field(default_factory=list)
    datasets: dict[str, str] = field(default_factory=dict)
    dataset_order: list[str] = field(default_factory=list)
    ylabel: str = "primary metric (%)"
    palette: list[str] = field(default_factory=list)


def plot_names(board: Board) -> dict[tuple[str, str | None], PlotNames]:
    """Per (protocol, modality) table, and per (protocol, None) where the protocol has one table."""
    out: dict[tuple[str, str | None], PlotNames] = {}
    palette = sorted({r.key for t in board.tables for r in [*t.rows, *t.unranked]})
    for t in board.tables:
        rows = [*t.rows, *t.unranked]
        out[(t.protocol, t.modality)] = PlotNames(
            {r.label: r.key for r in rows}, [r.key for r in rows], {c.label: c.key for c in t.columns},
            [c.key for c in t.columns], axis_label(t.protocol, t.metric), palette)
    for protocol in {t.protocol for t in board.tables}:
        tables = [t for t in board.tables if t.protocol == protocol]
        if len(tables) == 1:
            out[(protocol, None)] = out[(protocol, tables[0].modality)]
    return out


def renamed(names: PlotNames | None, values: Iterable[str], kind: str = "encoders") -> list[str]:
    """``values`` (full labels) by their short keys when ``names`` has them."""
    table = (names.encoders if kind == "encoders" else names.datasets) if names else {}
    return [table.get(v, v) for v in values]
