"""Leaderboard plots: files written, the points and bars each figure holds, the Pareto front, labels that do not
overlap (checked on the figure objects, not on pixels)."""

from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'repbench[plots]')")

from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.text import Annotation, Text  # noqa: E402
from matplotlib.transforms import Bbox  # noqa: E402

from benchmark.leaderboards import plots  # noqa: E402
from benchmark.results.record import Record, make_record  # noqa: E402
from benchmark.results.throughput import ThroughputRecord  # noqa: E402


def text_box(ann: Annotation, renderer) -> Bbox:
    """The box of the label's text alone (an Annotation's own extent includes its leader line)."""
    ann.update_positions(renderer)
    return Text.get_window_extent(ann, renderer)


def boxes_overlap(annotations) -> list[tuple[int, int]]:
    """Pairs (i, j) of annotations whose text boxes overlap (by matplotlib's own Bbox intersection)."""
    if not annotations:
        return []
    renderer = annotations[0].figure.canvas.get_renderer()
    boxes = [text_box(a, renderer) for a in annotations]
    out = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            both = Bbox.intersection(boxes[i], boxes[j])
            if both is not None and both.width > 0 and both.height > 0:
                out.append((i, j))
    return out


HOSTILE = "<script>alert(1)</script> $x$ \\frac"


def points() -> pd.DataFrame:
    return pd.DataFrame({
        "encoder": ["a", "b", "c", "d", "e", "f", HOSTILE],
        "accuracy": [90.0, 85.0, 80.0, 84.0, 90.0, 70.0, 79.0],
        "samples_per_s": [100.0, 1000.0, 5000.0, 900.0, 50.0, 5000.0, 4000.0],
    })


def test_pareto_front_against_a_hand_computed_set():
    # a (90, 100) beats e (90, 50); b (85, 1000) beats d (84, 900); c (80, 5000) beats f (70, 5000) and the
    # hostile one (79, 4000). The front, by speed: a, b, c.
    front = plots.pareto_front(points())
    assert list(front["encoder"]) == ["a", "b", "c"]
    # ties on both axes both stay; a single point is its own front
    tied = pd.DataFrame({"encoder": ["x", "y"], "accuracy": [1.0, 1.0], "samples_per_s": [2.0, 2.0]})
    assert list(plots.pareto_front(tied)["encoder"]) == ["x", "y"]
    assert list(plots.pareto_front(tied.head(1))["encoder"]) == ["x"]


def _annotations(ax):
    return [c for c in ax.get_children() if isinstance(c, Annotation)]


@pytest.mark.slow  # writes PNG and SVG files (seconds on a shared CPU)
def test_accuracy_throughput_figure_points_labels_and_files(tmp_path):
    fig = plots.accuracy_throughput_figure(points())
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    scatters = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert sum(len(s.get_offsets()) for s in scatters) == 7
    assert sorted(map(tuple, scatters[1].get_offsets())) == [(100.0, 90.0), (1000.0, 85.0), (5000.0, 80.0)]
    labels = _annotations(ax)
    assert sorted(a.get_text() for a in labels) == sorted(["a", "b", "c", "d", "e", "f", HOSTILE.replace("$", r"\$")])
    assert boxes_overlap(labels) == []
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    for a in labels:  # nothing cut: every label inside the axes
        box = text_box(a, fig.canvas.get_renderer())  # the text alone, not its leader line
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    paths = plots.plot_accuracy_throughput(points(), tmp_path, stem="acc")
    assert [p.name for p in paths] == ["acc.png", "acc.svg"] and all(p.stat().st_size > 1000 for p in paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in paths[1].read_bytes()[:500]
    assert plots.plot_accuracy_throughput(points().head(0), tmp_path) == []


def test_many_crowded_labels_do_not_overlap():
    n = 24
    crowded = pd.DataFrame({"encoder": [f"timm/encoder_number_{i}" for i in range(n)],
                            "accuracy": [80 + (i % 5) * 0.3 for i in range(n)],
                            "samples_per_s": [1000 * 1.15 ** i for i in range(n)]})
    fig = plots.accuracy_throughput_figure(crowded)
    assert boxes_overlap(_annotations(fig.axes[0])) == []


def frame_rows():
    rows = []
    for enc, vals in {"pixels": (0.9, 0.8), "resnet": (0.95, None), "vit": (0.7, 0.75)}.items():
        for dset, v in zip(("digits", "mnist5k"), vals, strict=True):
            if v is not None:
                rows.append({"encoder": enc, "dataset": dset, "protocol": "knn", "modality": "image", "seed": 0,
                             "status": "ok", "metric": "top1", "value": v, "ci_low": v - 0.02, "ci_high": v + 0.01})
    rows.append({**rows[0], "protocol": "linear", "value": 0.5, "ci_low": 0.45, "ci_high": 0.55})
    rows.append({**rows[0], "protocol": "linear", "encoder": "broken", "status": "error", "value": None})
    # two seeds of one cell: mean and a normal 95% interval over seeds
    rows.append({**rows[0], "protocol": "fewshot", "seed": 0, "value": 0.6})
    rows.append({**rows[0], "protocol": "fewshot", "seed": 1, "value": 0.7})
    return pd.DataFrame(rows)


@pytest.mark.slow  # writes PNG and SVG files (seconds on a shared CPU)
def test_dataset_bars_one_bar_per_cell_with_ci_whiskers(tmp_path):
    df = frame_rows()
    fig = plots.dataset_bars_figure(df, "knn")
    ax = fig.axes[0]
    bars = [b for c in ax.containers if isinstance(c, BarContainer) for b in c]
    assert len(bars) == 5  # resnet has no mnist5k: no bar, not a zero
    assert sorted(round(b.get_height(), 6) for b in bars) == [70.0, 75.0, 80.0, 90.0, 95.0]
    data = plots.bar_data(df, "knn").set_index(["dataset", "encoder"])
    assert data.loc[("digits", "pixels"), "low"] == pytest.approx(88.0)
    assert data.loc[("digits", "pixels"), "high"] == pytest.approx(91.0)
    # the whiskers drawn are those bounds
    segs = [seg for c in ax.containers if isinstance(c, BarContainer) and c.errorbar
            for seg in c.errorbar.lines[2][0].get_segments()]
    spans = sorted((round(s[0][1], 6), round(s[1][1], 6)) for s in segs)
    assert (88.0, 91.0) in spans and len(spans) == 5
    seeds = plots.bar_data(df, "fewshot").iloc[0]
    assert seeds["value"] == pytest.approx(65.0)
    assert seeds["high"] - seeds["value"] == pytest.approx(1.96 * pd.Series([60.0, 70.0]).std() / 2 ** 0.5)
    paths = plots.plot_dataset_bars(df[df["protocol"] != "fewshot"], tmp_path)
    assert sorted(p.name for v in paths.values() for p in v) == [
        "bars-knn.png", "bars-knn.svg", "bars-linear.png", "bars-linear.svg"]
    # a protocol over two modalities gets a chart per modality
    text = df[df["protocol"] == "knn"].assign(modality="text", dataset=lambda d: "r8-" + d["dataset"])
    assert plots.bar_groups(pd.concat([df, text])) == [("fewshot", None), ("knn", "image"), ("knn", "text"),
                                                       ("linear", None)]
    assert plots.bars_stem("knn", "text") == "bars-knn-text"


def test_many_datasets_get_a_heatmap_with_every_value_and_blank_missing_cells():
    from matplotlib.image import AxesImage

    rows = []
    for e, enc in enumerate(("pixels", "resnet", "vit")):
        for d in range(plots.MAX_BAR_GROUPS + 3):
            if (enc, d) != ("vit", 3):  # one missing cell
                v = 0.3 + 0.04 * d + 0.01 * e
                rows.append({"encoder": enc, "dataset": f"d{d:02d}", "protocol": "knn", "modality": "image",
                             "seed": 0, "status": "ok", "metric": "top1", "value": v, "ci_low": v, "ci_high": v})
    fig = plots.dataset_bars_figure(pd.DataFrame(rows), "knn")
    ax = fig.axes[0]
    assert not [c for c in ax.containers if isinstance(c, BarContainer)]  # no bars too thin to read
    image = next(a for a in ax.get_children() if isinstance(a, AxesImage))
    cells = image.get_array()
    assert cells.shape == (3, plots.MAX_BAR_GROUPS + 3)
    assert bool(cells.mask[2, 3]) and cells.mask.sum() == 1  # blank, not a zero
    assert cells[1, 5] == pytest.approx((0.3 + 0.2 + 0.01) * 100)
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["d00", "d01"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pixels", "resnet", "vit"]
    printed = sorted(t.get_text() for t in ax.texts)
    assert len(printed) == cells.count() and "51" in printed  # every present cell printed with its value
    # at the limit the bars stay
    few = pd.DataFrame([r for r in rows if int(r["dataset"][1:]) < plots.MAX_BAR_GROUPS])
    assert [c for c in plots.dataset_bars_figure(few, "knn").axes[0].containers if isinstance(c, BarContainer)]


def test_the_same_plot_rendered_twice_gives_the_same_files(tmp_path):
    # re-rendering unchanged records must not rewrite the published SVGs (matplotlib salts clip-path ids at random)
    df = frame_rows()
    first = plots.plot_dataset_bars(df, tmp_path / "a")
    second = plots.plot_dataset_bars(df, tmp_path / "b")
    for a, b in zip(sorted(p for v in first.values() for p in v), sorted(p for v in second.values() for p in v),
                    strict=True):
        assert a.name == b.name and a.read_bytes() == b.read_bytes(), a.name


def throughput(label, rate, device="cpu", status="ok"):
    return ThroughputRecord.from_json({
        "kind": "throughput", "schema_version": 1, "id": label + device, "created_at": "2026", "status": status,
        "encoder": {"name": label, "label": label}, "device": device, "device_name": "x", "precision": "fp32",
        "precision_ran": "fp32", "batch_size": 8, "seq_len": None, "channels_last": False, "compile": False,
        "timing": {"round_s": [1.0], "warmup": 0, "steps_per_round": 1, "median_s": 1.0, "min_s": 1.0,
                   "max_s": 1.0} if status == "ok" else None,
        "metrics": {"samples_per_s": rate} if status == "ok" else {}, "environment": {},
        "error": None if status == "ok" else {"type": "OOM", "message": "m"}, "notes": []})


def test_quality_throughput_points_use_common_datasets_and_fastest_run():
    df = frame_rows()
    tps = [throughput("pixels", 100.0), throughput("pixels", 300.0), throughput("vit", 50.0),
           throughput("resnet", 80.0), throughput("vit", 9999.0, device="cuda")]
    pts = plots.quality_throughput_points(df, tps, protocol="knn").set_index("encoder")
    # resnet lacks mnist5k, so the common set is digits alone; vit's cuda run is another device
    assert pts.loc["pixels", "accuracy"] == pytest.approx(90.0) and pts.loc["pixels", "samples_per_s"] == 300.0
    assert pts.loc["vit", "samples_per_s"] == 50.0 and set(pts["datasets"]) == {1}
    no_resnet = plots.quality_throughput_points(df, tps[:3], protocol="knn").set_index("encoder")
    assert no_resnet.loc["pixels", "accuracy"] == pytest.approx(85.0) and set(no_resnet["datasets"]) == {2}


def mrec(enc, dset, v, seconds=None, method=None, created="2026-01-01", watch_seconds=None, **extra):
    """A knn record (a typed Record, as the plots take) of ``enc`` on ``dset``; ``extra`` adds top-level fields."""
    e = {"name": enc, "label": enc}
    if seconds is not None:
        e["pretraining"] = {"method": method, "backbone": "timm/resnet18[pretrained=false]",
                            "result": {"seconds": seconds}}
        if watch_seconds is not None:
            e["pretraining"]["result"]["watch_seconds"] = watch_seconds
    rec = make_record(encoder=e, dataset={"name": dset, "label": dset},
                      protocol={"name": "knn", "label": "knn", "primary_metric": "top1"}, metrics={"top1": v},
                      seed=0, precision="fp32", timings={}, environment={}, error=None, config_digest="0",
                      created_at=created)
    return Record.from_json({**rec.to_json(), **extra}) if extra else rec


@pytest.mark.slow  # writes PNG and SVG files (seconds on a shared CPU)
def test_methods_plot_points_and_reference_lines(tmp_path):
    recs = [mrec("run:a", "digits", 0.91, 180, "simclr"), mrec("run:b", "digits", 0.93, 900, "byol"),
            mrec("run:b", "digits", 0.10, 900, "byol", created="2025-01-01"),  # older rerun: ignored
            mrec("pixels", "digits", 0.97),
            mrec("timm/vit_small_patch16_224", "digits", 0.95),  # a pretrained encoder: not a reference line
            mrec("pub", "digits", 0.99, source="published", provenance={"file": "pub.json"})]
    pts = plots.methods_points(recs)
    assert len(pts) == 4 and pts.set_index("encoder").loc["run:b", "accuracy"] == pytest.approx(93.0)
    fig = plots.methods_figure(pts, "digits")
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 2
    assert [round(line.get_ydata()[0], 6) for line in ax.get_lines()] == [97.0]  # pixels as a reference line
    assert sorted(a.get_text() for a in _annotations(ax)) == ["byol", "simclr"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["raw pixels (no pretraining): 97.0"]
    two = pd.concat([pts, pts.assign(backbone="timm/vit_tiny_patch16_224[img_size=32,patch_size=4]",
                                     encoder=pts["encoder"] + "v")])
    ax2 = plots.methods_figure(two[two["seconds"].notna()], "digits").axes[0]
    assert "simclr · vit_tiny_patch4_32" in {a.get_text() for a in _annotations(ax2)}  # short names, not specs
    paths = plots.plot_methods(recs, tmp_path)
    assert sorted(p.name for p in paths) == ["methods-digits.png", "methods-digits.svg"]
    assert plots.plot_methods(recs[3:], tmp_path) == []  # no pretraining run: no methods plot


def test_methods_plot_tells_apart_runs_of_one_method_by_their_budgets():
    recs = [mrec("run:a", "digits", 0.91, 180, "mae"), mrec("run:b", "digits", 0.93, 900, "mae"),
            mrec("run:c", "digits", 0.80, 200, "dino")]
    budgets = {"run:a": 100, "run:b": 2000}
    recs = [Record.from_json({**(j := r.to_json()), "encoder": {**j["encoder"], "pretraining": {
        **j["encoder"]["pretraining"], "budget": {"steps": budgets[j["encoder"]["name"]]}}}})
            if r.encoder.name in budgets else r for r in recs]
    pts = plots.methods_points(recs)
    assert dict(zip(pts["encoder"], pts["detail"], strict=True)) == {
        "run:a": " · 100 steps", "run:b": " · 2000 steps", "run:c": ""}
    labels = {a.get_text() for a in _annotations(plots.methods_figure(pts, "digits").axes[0])}
    assert labels == {"mae · 100 steps", "mae · 2000 steps", "dino"}


@pytest.mark.slow  # draws a figure
def test_methods_plot_leaves_out_the_watchs_checks_where_a_run_timed_them():
    """A run that timed its probe checks apart sits at its training time; one that did not keeps its wall time,
    drawn hollow and named in the legend, and the axis says which is which."""
    recs = [mrec("run:a", "digits", 0.91, 180, "simclr", watch_seconds=60), mrec("run:b", "digits", 0.93, 900, "byol")]
    pts = plots.methods_points(recs).set_index("encoder")
    assert pts.loc["run:a", "seconds"] == 120 and bool(pts.loc["run:a", "timed"])
    assert pts.loc["run:b", "seconds"] == 900 and not bool(pts.loc["run:b", "timed"])
    ax = plots.methods_figure(pts.reset_index(), "digits").axes[0]
    filled, hollow = ([tuple(xy) for xy in c.get_offsets()] for c in ax.collections)
    assert (filled, hollow) == ([(120.0, 91.0)], [(900.0, 93.0)])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["run whose time includes the watch's checks"]
    assert ax.get_xlabel() == "pretraining time (s): without the watch's checks, where the run timed them"
    every = plots.methods_figure(plots.methods_points(recs[:1]), "digits").axes[0]
    assert every.get_xlabel() == "pretraining time without the watch's checks (s)" and every.get_legend() is None
