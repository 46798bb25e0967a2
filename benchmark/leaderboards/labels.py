"""Point labels that neither overlap each other nor leave the axes: a greedy placement over candidate offsets.

matplotlib has no label repulsion of its own; adjustText would be one more dependency for what a few candidate
positions solve on leaderboard-sized plots (tens of points). Each label, in turn, takes the first candidate
offset around its point whose box (in display pixels, measured with the figure's renderer) stays inside the
axes and overlaps no label already placed and no marker; when none is free, the one with the least overlap.
Labels placed away from their point get a thin leader line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

from benchmark.leaderboards.safe_text import visible

#: (dx, dy) directions in points, tried in order at growing distances
_DIRECTIONS = ((1, 0.3), (1, -1), (-1, 0.3), (-1, -1), (0, 1.2), (0, -1.8), (1, 1.2), (-1, 1.2), (1, -1.8),
               (-1, -1.8))
_DISTANCES = (6, 14, 24, 36, 50, 66, 84, 104)
_MARKER_PX = 9.0  # clearance around every marker, so a label never sits nearer another point than its own


def mpl_text(text: str) -> str:
    """``text`` shown literally by matplotlib: ``$`` would start mathtext (and a stray one raises); control
    characters (a NUL makes the SVG invalid XML) and bidi overrides as U+FFFD."""
    return visible(text).replace("$", r"\$")


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box: Bbox, frame: Bbox) -> float:
    """How much of ``box`` lies outside ``frame`` (area in px^2)."""
    return box.width * box.height - _overlap(box, frame)


Segment = tuple[float, float, float, float]


def _segment_box(ax: Axes, seg: Segment) -> Bbox:
    (ax0, ay0), (ax1, ay1) = ax.transData.transform([(seg[0], seg[1]), (seg[2], seg[3])])
    return Bbox.from_extents(min(ax0, ax1) - 2, min(ay0, ay1) - 2, max(ax0, ax1) + 2, max(ay0, ay1) + 2)


def place_labels(ax: Axes, xs: Sequence[float], ys: Sequence[float], texts: Sequence[str],
                 fontsize: float = 8, avoid: Sequence[Segment] = ()) -> list[Annotation]:
    """Annotate each point (data coordinates) with its text without overlaps; returns the annotations in input
    order. ``avoid``: horizontal or vertical line segments ``(x0, y0, x1, y1)`` in data coordinates that labels
    must not cover either (a Pareto step line, reference lines). Call it after the axes' limits and scales are
    final (it measures in display space)."""
    fig = ax.figure
    fig.canvas.draw()  # limits, scales and layout as they will be saved
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = ax.get_window_extent(renderer)
    points = [ax.transData.transform((x, y)) for x, y in zip(xs, ys, strict=True)]
    taken = [Bbox.from_extents(px - _MARKER_PX, py - _MARKER_PX, px + _MARKER_PX, py + _MARKER_PX)
             for px, py in points]
    taken += [_segment_box(ax, seg) for seg in avoid]
    legend = ax.get_legend()
    if legend is not None:  # a legend inside the axes is taken space too
        taken.append(legend.get_window_extent(renderer))
    labels: list[Bbox] = []  # the boxes of the labels placed so far
    placed: list[Annotation | None] = [None] * len(texts)
    # top points first: they are usually the ones people read, and get the nearest free spot
    for i in sorted(range(len(texts)), key=lambda k: -points[k][1]):
        best: tuple[float, Annotation, Bbox] | None = None
        for dist in _DISTANCES:
            for dx, dy in _DIRECTIONS:
                ann = _annotation(ax, xs[i], ys[i], texts[i], dx * dist, dy * dist, fontsize)
                box = _text_box(ann, renderer).padded(1.5)
                # another label covered or a label cut off is far worse than a label over a line or a marker
                cost = (_outside(box, frame) * 50 + sum(_overlap(box, t) for t in taken)
                        + 100 * sum(_overlap(box, t) for t in labels))
                if best is None or cost < best[0]:
                    if best is not None:
                        best[1].remove()
                    best = (cost, ann, box)
                else:
                    ann.remove()
                if best[0] == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        _, ann, box = best
        if (ann.xyann[0] ** 2 + ann.xyann[1] ** 2) ** 0.5 > 10:  # not right beside its point: draw a leader line
            ann.remove()
            ann = _annotation(ax, xs[i], ys[i], texts[i], ann.xyann[0], ann.xyann[1], fontsize, leader=True)
        labels.append(box)
        placed[i] = ann
    return [a for a in placed if a is not None]


def _text_box(ann: Annotation, renderer: Any) -> Bbox:
    """The box of the label's text alone (an Annotation's own extent includes its leader line)."""
    ann.update_positions(renderer)  # where the text goes, from the point and the offset
    return Text.get_window_extent(ann, renderer)


def _annotation(ax: Axes, x: float, y: float, text: str, dx: float, dy: float, fontsize: float,
                leader: bool = False) -> Annotation:
    ha = "left" if dx > 0 else "right" if dx < 0 else "center"
    va = "bottom" if dy > 0 else "top" if dy < 0 else "center"
    arrow = {"arrowstyle": "-", "color": "0.55", "lw": 0.6, "shrinkA": 0, "shrinkB": 3} if leader else None
    return ax.annotate(mpl_text(text), (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va,
                       fontsize=fontsize, arrowprops=arrow, annotation_clip=False)
