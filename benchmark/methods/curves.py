"""The curves of a pretraining run: loss, learning rate, online probe accuracy (kNN and linear) and RankMe,
against the step (matplotlib, the ``plots`` extra). :func:`plot_curves` writes one PNG into the run folder
(without matplotlib, none); :func:`curves_figure` draws the same panels from the watch curve alone (what a
record keeps), for the methods page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.storage.atomic import atomic_path

CURVES_FILE = "curves.png"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves_figure(watch: Sequence[Mapping[str, Any]], loss: Sequence[float] = (), lr: Sequence[float] = (),
                  title: str = "") -> Any:
    """The four panels as a matplotlib Figure. ``loss``/``lr``: per-step curves (step 1, 2, ...); without
    ``lr``, the learning rate recorded at the watch points (``lr``) is drawn. Panels without data say so."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True, constrained_layout=True)
    (ax_loss, ax_lr), (ax_acc, ax_rank) = axes
    if loss:
        ax_loss.plot(range(1, len(loss) + 1), loss, lw=1, color="tab:blue", label="training loss")
    monitored = [p for p in watch if "loss" in p]
    if monitored:
        ax_loss.plot([p["step"] for p in monitored], [p["loss"] for p in monitored], "o-", color="tab:orange",
                     ms=3, label="loss on the fixed batch")
    ax_loss.set(title="loss", xlabel="step")
    lr_points = [(i + 1, v) for i, v in enumerate(lr)] or [(p["step"], p["lr"]) for p in watch if "lr" in p]
    ax_lr.plot([s for s, _ in lr_points], [v for _, v in lr_points], "-" if lr else "o-", ms=3, lw=1,
               color="tab:green")
    ax_lr.set(title="learning rate", xlabel="step")
    probed = [p for p in watch if "knn" in p or "linear" in p]
    for key, colour in (("knn", "tab:purple"), ("linear", "tab:red")):
        ax_acc.plot([p["step"] for p in probed if key in p], [100 * p[key] for p in probed if key in p], "o-",
                    ms=3, color=colour, label=f"online {key}")
    ax_acc.set(title="online probe accuracy (held-out subset)", xlabel="step", ylabel="%")
    ranked = [p for p in watch if "rankme" in p]
    ax_rank.plot([p["step"] for p in ranked], [p["rankme"] for p in ranked], "o-", ms=3, color="tab:brown")
    ax_rank.set(title="RankMe (effective rank of the embeddings)", xlabel="step")
    for ax, drawn in ((ax_loss, loss or monitored), (ax_lr, lr_points), (ax_acc, probed), (ax_rank, ranked)):
        if not drawn:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="0.5")
        elif ax in (ax_loss, ax_acc):
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_curves(path: Path, loss: Sequence[float], lr: Sequence[float], watch: Sequence[Mapping[str, Any]],
                title: str = "") -> Path | None:
    """Write the four panels to ``path`` (atomically); None when matplotlib is not installed."""
    try:
        plt = _pyplot()
    except ImportError:
        return None
    fig = curves_figure(watch, loss, lr, title)
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(path)
