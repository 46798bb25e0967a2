"""The page as people look at it (issue 18 §5), the same for every board: a real title, when and with what the
records were made (from the records: the same records give the same page), links to the files beside it, the
legend the tables share shown once, plots whose legends read like the tables (short labels, rank order) and
whose axes name the metric; and a board's throughput table holds only that board's encoders."""

from __future__ import annotations

import base64
import dataclasses
import json
import re

import pytest
from test_board import rec
from test_throughput import _record as throughput_record

from benchmark.cli import main
from benchmark.leaderboards.board import build_board
from benchmark.results.store import ResultStore
from benchmark.results.throughput import write_throughput

SVG = re.compile(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+")
CI_LEGEND = "half the width of its 95% confidence interval"


def _records():
    out = []
    for protocol in ("knn", "linear"):
        for enc, base in (("timm/resnet18[img_size=64,pretrained=false]", 0.3), ("pixels", 0.8), ("zz-enc", 0.5)):
            for i, d in enumerate(("d1", "d2")):
                out.append(rec(enc, d, base + 0.05 * i, protocol=protocol, created=f"2026-03-0{i + 1}T10:00:00"))
    out = [dataclasses.replace(r, environment={"repbench": "0.0.9", "device": "cpu", "device_name": "testbox"})
           for r in out]
    return out


def _results(tmp_path, records=None, throughput=()):
    folder = tmp_path / "results"
    store = ResultStore(folder)
    for r in records if records is not None else _records():
        store.write(r)
    for t in throughput:
        write_throughput(folder, t)
    return folder


def _page(tmp_path, out_name="out-folder-name", *extra):
    results = _results(tmp_path)
    out = tmp_path / out_name
    assert main(["leaderboard", "--results", str(results), "--out", str(out), *extra]) == 0
    return out, (out / "index.html").read_text(encoding="utf-8")


@pytest.mark.slow  # draws plots
def test_the_page_says_what_when_and_with_what_and_links_its_files(tmp_path):
    out, page = _page(tmp_path)
    title = re.search(r"<h1>(.*?)</h1>", page).group(1)
    assert "out-folder-name" not in page and title == "repbench: knn, linear on image"
    assert "2026-03-02 10:00:00" in page  # the newest record's time, not the time of rendering
    assert "repbench 0.0.9" in page and "cpu (testbox)" in page
    for name in ("records.csv", "leaderboard.json"):
        assert f'href="{name}"' in page and (out / name).is_file()
    # the shared legend once (two tables), above the first table; each table keeps its own short line
    assert page.count(CI_LEGEND) == 1 and page.index(CI_LEGEND) < page.index("<table")
    assert page.count("Ranked by Borda count over the 2 dataset(s)") == 2


@pytest.mark.slow  # draws plots
def test_the_same_records_render_the_same_page_wherever_it_is_written(tmp_path):
    _, first = _page(tmp_path, "a")
    _, second = _page(tmp_path, "b")
    assert SVG.sub("svg", first) == SVG.sub("svg", second)  # plots aside (matplotlib's SVG ids are random)


def test_a_suite_page_is_titled_by_the_suite_and_a_methods_page_by_what_it_holds():
    from benchmark.leaderboards.pageinfo import page_title

    board = build_board(_records())
    board.suite = {"name": "offline-vision-v1", "version": 1}
    assert page_title(board) == "repbench: suite offline-vision-v1 (version 1)"
    run = _records()[0]
    run.encoder.extra["pretraining"] = {"method": "simclr"}
    assert page_title(build_board([run]), [run]) == "repbench: pretraining methods"


@pytest.mark.parametrize(("protocol", "metric", "label"), [
    ("knn", "top1", "kNN top-1 accuracy (%)"), ("qrels-retrieval", "ndcg@10", "retrieval nDCG@10 (%)"),
    ("sts", "spearman", "STS Spearman correlation (%)"), ("mine", "f1", "mine f1 (%)")])
def test_axes_name_the_metric(protocol, metric, label):
    from benchmark.leaderboards.pageinfo import axis_label

    assert axis_label(protocol, metric) == label


@pytest.mark.slow  # matplotlib
def test_bar_legends_use_the_short_labels_in_rank_order_and_the_axis_names_the_metric():
    from benchmark.leaderboards import plots
    from benchmark.leaderboards.pageinfo import plot_names
    from benchmark.leaderboards.tables import to_frame

    records = _records()
    board = build_board(records)
    names = plot_names(board)[("knn", "image")]
    ranked = [r.key for r in board.tables[0].rows]
    assert ranked == ["pixels", "zz-enc", "timm/resnet18"]  # not alphabetical, not the full spec
    fig = plots.dataset_bars_figure(to_frame(records), "knn", names=names)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ranked
    assert ax.get_ylabel() == "kNN top-1 accuracy (%)"
    fig_plain = plots.dataset_bars_figure(to_frame(records), "knn")  # without a board: the frame's metric
    assert fig_plain.axes[0].get_ylabel() == "kNN top-1 accuracy (%)"


@pytest.mark.slow  # draws plots
def test_the_throughput_table_holds_only_the_boards_encoders(tmp_path):
    text = [rec("tfidf", "t1", 0.7, modality="text", name="t1")]
    other = throughput_record()
    mine = dataclasses.replace(other, id="a1", encoder={**other.encoder, "name": "tfidf", "label": "tfidf"})
    results = _results(tmp_path, text, [mine, other])
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(results), "--out", str(out)]) == 0
    board = json.loads((out / "leaderboard.json").read_text())
    assert [row["encoder"] for row in board["throughput"]] == ["tfidf"]
    assert "timm/resnet18" not in (out / "throughput.csv").read_text()
    page = (out / "index.html").read_text()
    assert "timm/resnet18" not in SVG.sub("", page)
    speed = tmp_path / "speed"  # a board of throughput records alone keeps every encoder
    speed.mkdir()
    for t in (mine, other):
        write_throughput(speed, t)
    assert main(["leaderboard", "--results", str(speed), "--out", str(tmp_path / "speed-board")]) == 0
    shown = json.loads((tmp_path / "speed-board" / "leaderboard.json").read_text())["throughput"]
    assert sorted(row["encoder"] for row in shown) == ["tfidf", "timm/resnet18[pretrained=false]"]


def test_base64_is_what_the_page_embeds():  # the SVG pattern above matches what page.py writes
    assert SVG.fullmatch("data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode())


@pytest.mark.slow  # matplotlib
def test_an_encoder_keeps_its_colour_in_every_plot_of_the_board():
    """The legends follow each table's rank, the colours do not: an encoder ranked first under kNN and last under
    linear is drawn in the same colour in both plots."""
    from matplotlib.container import BarContainer

    from benchmark.leaderboards import plots
    from benchmark.leaderboards.pageinfo import plot_names
    from benchmark.leaderboards.tables import to_frame

    linear_first = {"zz-enc": 0.95, "pixels": 0.2}  # reverses the kNN ranking of these two
    records = [dataclasses.replace(r, metrics={**r.metrics, "top1": (v := linear_first[r.encoder.name]),
                                               "top1_ci95": [v - 0.02, v + 0.02]})
               if r.protocol.name == "linear" and r.encoder.name in linear_first else r for r in _records()]
    board = build_board(records)
    colours = {}
    for protocol in ("knn", "linear"):
        names = plot_names(board)[(protocol, "image")]
        ax = plots.dataset_bars_figure(to_frame(records), protocol, names=names).axes[0]
        legend = ax.get_legend()
        labels = [t.get_text() for t in legend.get_texts()]
        colours[protocol] = dict(zip(labels, [tuple(h.get_facecolor()) for h in legend.legend_handles], strict=True))
        if protocol == "linear":
            assert labels[0] == "zz-enc"  # the legend follows this table's rank
        # and so do the bars: within each dataset's group, left to right in the legend's order, inside the group
        containers = [c for c in ax.containers if isinstance(c, BarContainer)]
        for group in range(2):
            xs = [c.patches[group].get_x() for c in containers]
            assert xs == sorted(xs) and group - 0.4 <= xs[0] and xs[-1] < group + 0.4
    assert colours["knn"] == colours["linear"]
    assert len(set(colours["knn"].values())) == 3
