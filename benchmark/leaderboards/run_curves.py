"""Each pretraining run's curves on the methods page: loss on the fixed batch, learning rate, online kNN and
linear accuracy, RankMe, against the step, drawn from the watch curve the run's evaluation records carry
(``encoder.pretraining.result.watch_curve``; the panels of the run folder's ``curves.png``,
:func:`benchmark.methods.curves.curves_figure`). A run trained without ``--probe-every`` has no curve and
no plot; the section's caption names it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from benchmark.leaderboards.methods import as_mapping, run_label, watch_curve
from benchmark.results.record import Record


def runs_of(records: Iterable[Record]) -> dict[str, Mapping[str, Any]]:
    """encoder label -> ``encoder.pretraining`` of each pretraining run among ``records`` (the newest record
    of a run wins: its evaluations all carry the same run)."""
    runs: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for rec in records:
        pre = rec.encoder.extra.get("pretraining")
        if not isinstance(pre, Mapping):
            continue
        stamp = str(rec.created_at or "")
        label = rec.encoder.display
        if label not in runs or runs[label][0] <= stamp:
            runs[label] = (stamp, pre)
    return {label: pre for label, (_, pre) in sorted(runs.items(), key=lambda kv: run_label(kv[1][1]))}


def _title(pre: Mapping[str, Any]) -> str:
    data = as_mapping(pre.get("data"))
    return f"{run_label(pre)} on {data.get('dataset', pre.get('dataset'))} (seed {pre.get('seed')})"


def plot_run_curves(records: Iterable[Record], out_dir: Path | str) -> list[Path]:
    """``curves-<run>.png/.svg`` in ``out_dir`` for every run with a watch curve; the paths written."""
    from benchmark.leaderboards.labels import mpl_text
    from benchmark.leaderboards.plots import save
    from benchmark.methods.curves import curves_figure
    from benchmark.results.files import slug

    paths: list[Path] = []
    for label, pre in runs_of(records).items():
        curve = watch_curve(pre)
        if curve:
            paths += save(curves_figure(curve, title=mpl_text(_title(pre))), out_dir, f"curves-{slug(label)}")
    return paths


def curves_caption(records: Iterable[Record]) -> str:
    """What the curves show, and which runs have none."""
    missing = [run_label(pre) for pre in runs_of(records).values() if not watch_curve(pre)]
    text = ("One figure per pretraining run, from the watch curve in its records (`repbench pretrain "
            "--probe-every N`): the loss on a fixed batch, the learning rate, the online kNN and linear probe "
            "accuracy on the held-out subset of the training split, and RankMe, at every check.")
    return text + (f"\n\nNo watch curve recorded (trained without --probe-every): {', '.join(missing)}."
                   if missing else "")
