"""The curves of a pretraining run as one PNG in its folder: loss, learning rate, online probe accuracy (kNN and
linear) and RankMe, against the step (matplotlib, the ``plots`` extra; without it no PNG is written)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.storage.atomic import atomic_path

CURVES_FILE = "curves.png"


def plot_curves(path: Path, loss: Sequence[float], lr: Sequence[float], watch: Sequence[Mapping[str, Any]],
                title: str = "") -> Path | None:
    """Write the four panels to ``path`` (atomically); None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    steps = list(range(1, len(loss) + 1))
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    (ax_loss, ax_lr), (ax_acc, ax_rank) = axes
    ax_loss.plot(steps, loss, lw=1, color="tab:blue", label="training loss")
    monitored = [p for p in watch if "loss" in p]
    if monitored:
        ax_loss.plot([p["step"] for p in monitored], [p["loss"] for p in monitored], "o-", color="tab:orange",
                     ms=3, label="loss on the fixed batch")
    ax_loss.set(title="loss", xlabel="step")
    ax_loss.legend(fontsize=8)
    ax_lr.plot(steps, lr, lw=1, color="tab:green")
    ax_lr.set(title="learning rate", xlabel="step")
    probed = [p for p in watch if "knn" in p]
    for key, colour in (("knn", "tab:purple"), ("linear", "tab:red")):
        ax_acc.plot([p["step"] for p in probed], [100 * p[key] for p in probed], "o-", ms=3, color=colour,
                    label=f"online {key}")
    ax_acc.set(title="online probe accuracy (held-out subset)", xlabel="step", ylabel="%")
    if probed:
        ax_acc.legend(fontsize=8)
    ax_rank.plot([p["step"] for p in monitored], [p["rankme"] for p in monitored], "o-", ms=3, color="tab:brown")
    ax_rank.set(title="RankMe (effective rank of the embeddings)", xlabel="step")
    if title:
        fig.suptitle(title, fontsize=10)
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return Path(path)
