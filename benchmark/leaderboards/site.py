"""The leaderboard folder ``repbench leaderboard --out DIR`` writes: plots (PNG and SVG under ``plots/``) and
one ``index.html`` holding the tables given to it, the plots, and the published numbers in their own section.

The tables themselves come from :mod:`benchmark.leaderboards.tables` (built by the caller from the *measured*
frame and handed in as :class:`~benchmark.leaderboards.page.Section` s); this module adds what it owns: the
plots of the measured records, the published section, and the page. Published records never reach a plot or
a measured table: :func:`write_site` splits them off first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.leaderboards.page import Section, write_page
from benchmark.leaderboards.published import source_frame, split_frame, split_records
from benchmark.leaderboards.run_curves import curves_caption, plot_run_curves
from benchmark.results.record import Record
from benchmark.results.throughput import ThroughputRecord

if TYPE_CHECKING:
    from benchmark.leaderboards.pageinfo import PlotNames


def published_table(published: pd.DataFrame, records: Iterable[Record | Any] = ()) -> pd.DataFrame:
    """Published rows for display: encoder, dataset, protocol, the metric's name, its value in percent (a
    fraction as the peer stored it, times 100) and where it came from. Given the evaluation ``records``, a
    published MTEB number whose measured cell is among them also shows that cell's value and the difference
    (:mod:`benchmark.leaderboards.published_join`)."""
    from benchmark.leaderboards.published_join import join_published, joined_columns

    ok = published[published["status"] == "ok"]
    records = [r for r in records if isinstance(r, Record)]
    mine = set(ok["id"])
    joined = join_published([r for r in records if r.id in mine and r.origin == "published"], records)
    extra = joined_columns(list(ok["id"]), joined) if joined else {}
    return pd.DataFrame({
        "encoder": ok["encoder"], "dataset": ok["dataset"], "protocol": ok["protocol"],
        "modality": ok["modality"].fillna(""), "metric": ok["metric"],
        "value (%)": [f"{v * 100:.2f}" if pd.notna(v) else "–" for v in ok["value"]],
        **extra, "source": ok["provenance"],
    }).sort_values(["dataset", "encoder"]).reset_index(drop=True)


PUBLISHED_NOTE = ("Imported with `repbench import` from the files and addresses in `source`, exactly as their "
                  "authors published them (their splits, their protocols); not measured here, and never part of "
                  "the measured tables, ranks or plots above.")


def _svg(path: Path) -> str:
    return path.read_text(encoding="utf-8")


Key = tuple[str, "str | None"]


def write_plots(frame: pd.DataFrame, records: Iterable[Record | Any], throughput: Iterable[ThroughputRecord],
                out_dir: Path | str, names: Mapping[tuple[str, str | None], PlotNames] | None = None
                ) -> dict[Any, list[Path]]:
    """Every plot of the measured results into ``out_dir``, keyed by (protocol, modality) (modality None when
    the protocol has one): ``bars-...`` and ``accuracy-vs-throughput-...`` (when at least two encoders also
    have throughput records), plus the key ``"methods"`` for ``methods-<dataset>`` and ``"curves"`` for each
    pretraining run's ``curves-<run>``. Published rows and records are dropped here too. ``names``
    (:func:`~benchmark.leaderboards.pageinfo.plot_names`): the board's short labels, rank order and metric names,
    for the legends and axes."""
    from benchmark.leaderboards import plots

    if "source" in frame.columns:
        frame = split_frame(frame)[0]
    throughput = split_records(throughput)[0]
    out: dict[Any, list[Path]] = dict(plots.plot_dataset_bars(frame, out_dir, names))
    for protocol, modality in list(out):
        sub = frame if modality is None else frame[frame["modality"] == modality]
        points = plots.quality_throughput_points(sub, throughput, protocol=protocol)
        if len(points) >= 2:
            named = (names or {}).get((protocol, modality))
            if named is not None:
                points["encoder"] = [named.encoders.get(e, e) for e in points["encoder"]]
            what = protocol if modality is None else f"{protocol} ({modality})"
            title = f"{what}: mean over {int(points['datasets'].iloc[0])} common dataset(s) vs samples/s"
            stem = plots.bars_stem(protocol, modality).replace("bars-", "accuracy-vs-throughput-", 1)
            ylabel = "mean " + (named.ylabel if named else plots.axis_of(sub, protocol))
            out[(protocol, modality)] += plots.plot_accuracy_throughput(points, out_dir, stem=stem, title=title,
                                                                        ylabel=ylabel)
    methods = plots.plot_methods(split_records(records)[0], out_dir)
    if methods:
        out["methods"] = methods
    curves = plot_run_curves(split_records(records)[0], out_dir)
    if curves:
        out["curves"] = curves
    return out


def _claim(svgs: dict[Any, list[str]], claimed: set[Any], s: Section) -> list[str]:
    """The plots a section shows: those of its (protocol, modality), or of its protocol when the plots are
    not split by modality; each set once, under the first section that claims it."""
    for key in ((s.protocol, s.modality), (s.protocol, None)):
        if key in svgs and key not in claimed:
            claimed.add(key)
            return svgs[key]
    return []


#: The stems this module draws into ``plots/`` (other commands' plots there, such as ``depth``, are left alone)
DRAWN_STEMS = ("bars-", "accuracy-vs-throughput-", "methods-", "curves-")


def _drop_stale_plots(folder: Path, drawn: set[str]) -> None:
    """Remove this module's plots in ``folder`` that this render did not draw: a page never sits beside plots of
    a table, protocol or run it no longer has."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.suffix in (".png", ".svg") and path.name.startswith(DRAWN_STEMS) and path.name not in drawn:
            path.unlink()


def write_site(out_dir: Path | str, title: str, sections: Sequence[Section], records: Iterable[Record | Any],
               throughput: Iterable[ThroughputRecord] = (), *, intro: str = "", plots: bool = True,
               names: Mapping[tuple[str, str | None], PlotNames] | None = None) -> dict[str, Any]:
    """Write ``plots/`` and ``index.html`` into ``out_dir``. ``sections``: the measured tables (their
    ``protocol`` and ``modality`` say which plots go under them; plots of a protocol no section claims get their own section).
    ``records``: every evaluation record, measured and published (split here). Returns ``{"page": path,
    "plots": {(protocol, modality) or "methods": [paths]}}``. ``plots=False`` draws none (no matplotlib)."""
    out = Path(out_dir)
    records = list(records)
    frame = source_frame(records)
    measured, published = split_frame(frame)
    drawn = write_plots(measured, records, throughput, out / "plots", names) if plots and len(measured) else {}
    if plots:
        _drop_stale_plots(out / "plots", {p.name for ps in drawn.values() for p in ps})
    svgs = {k: [_svg(p) for p in v if p.suffix == ".svg"] for k, v in drawn.items()}
    claimed: set[Any] = set()
    page = [replace(s, plots=[*s.plots, *_claim(svgs, claimed, s)]) for s in sections]
    for key in sorted(set(svgs) - claimed - {"methods", "curves"}, key=str):
        protocol, modality = key
        page.append(Section(f"{protocol}{f' ({modality})' if modality else ''}: plots", None, protocol=protocol,
                            modality=modality, plots=svgs[key]))
    if "methods" in svgs:
        page.append(Section("Methods: kNN accuracy against pretraining wall time", None, plots=svgs["methods"],
                            caption="Pretraining runs as points; encoders without pretraining (raw pixels, the "
                                    "backbone at random init) as dashed reference lines."))
    if "curves" in svgs:
        page.append(Section("Training curves", None, plots=svgs["curves"], caption=curves_caption(records)))
    if len(published):
        page.append(Section("Published numbers (imported)", published_table(published, records), caption=PUBLISHED_NOTE,
                            published=True))
    return {"page": write_page(out / "index.html", title, page, intro=intro), "plots": drawn}
