"""The leaderboard folder: plots of the measured records, the page with the tables handed in, published
numbers in their own section and in no plot."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'repbench[plots]')")

from benchmark.leaderboards import table, to_frame  # noqa: E402
from benchmark.leaderboards.page import Section  # noqa: E402
from benchmark.leaderboards.site import write_site  # noqa: E402
from benchmark.results.record import Record  # noqa: E402
from benchmark.results.throughput import ThroughputRecord  # noqa: E402


def throughput(label, rate):
    return {"kind": "throughput", "schema_version": 1, "id": label, "created_at": "2026", "status": "ok",
            "encoder": {"name": label, "label": label}, "device": "cpu", "device_name": "x", "precision": "fp32",
            "precision_ran": "fp32", "batch_size": 8, "seq_len": None, "channels_last": False, "compile": False,
            "timing": {"round_s": [1.0], "warmup": 0, "steps_per_round": 1, "median_s": 1.0, "min_s": 1.0,
                       "max_s": 1.0}, "metrics": {"samples_per_s": rate}, "environment": {}, "error": None,
            "notes": []}


def rec(enc, dset, proto, v, modality="image", source=None):
    r = {"schema_version": 1, "id": f"{enc}{dset}{proto}{source}", "created_at": "2026-01-01T00:00:00",
         "status": "ok", "encoder": {"name": enc, "label": enc}, "dataset": {"name": dset, "label": dset,
                                                                             "modality": modality},
         "protocol": {"name": proto, "label": proto, "primary_metric": "top1"},
         "metrics": {"top1": v, "top1_ci95": [v - 0.01, v + 0.01]}, "seed": 0, "timings": {}, "environment": {},
         "error": None}
    if source:
        r.update(source="published", provenance={"file": "results-imagenet.csv", "url": "https://example.org/t"})
    return Record.from_json(r)


@pytest.mark.slow
def test_write_site_plots_page_and_published_apart(tmp_path):
    measured = [rec(e, d, "knn", v) for e, v in (("a", 0.9), ("b", 0.8)) for d in ("digits", "mnist5k")]
    measured += [rec("t", "r8", "knn", 0.7, modality="text")]
    published = [rec("timm/resnet50", "digits", "knn", 0.99, source="published")]
    tps = [ThroughputRecord.from_json(throughput("a", 100.0)), ThroughputRecord.from_json(throughput("b", 1000.0))]
    sections = [Section("knn (image)", table(to_frame(measured[:4])), protocol="knn", modality="image")]
    out = write_site(tmp_path / "lb", "Leaderboard", sections, measured + published, tps)
    names = sorted(p.name for v in out["plots"].values() for p in v)
    assert names == ["accuracy-vs-throughput-knn-image.png", "accuracy-vs-throughput-knn-image.svg",
                     "bars-knn-image.png", "bars-knn-image.svg", "bars-knn-text.png", "bars-knn-text.svg"]
    page = out["page"].read_text(encoding="utf-8")
    # the image plots under the image section, the text bars in a section of their own, published apart
    assert page.count('src="data:image/svg+xml;base64,') == 3
    assert '<section id="s1" data-modality="text" data-protocol="knn">' in page
    assert "Published numbers (imported)" in page and "https://example.org/t" in page
    # matplotlib's SVG keeps each label's text in a comment: the measured encoders are there, the published not
    bars = (tmp_path / "lb" / "plots" / "bars-knn-image.svg").read_text(encoding="utf-8")
    assert "<!-- a -->" in bars and "<!-- b -->" in bars and "resnet50" not in bars


@pytest.mark.slow  # draws plots
def test_a_board_of_some_protocols_draws_only_their_plots_and_drops_stale_ones(tmp_path):
    """`repbench leaderboard --protocol cluster` over records that also hold kNN used to draw kNN bars with full
    labels under a section of their own (the profiles board's 70-dataset kNN bars); and a plot of a table the
    board no longer has stayed in plots/ beside the page."""
    from benchmark.cli import main
    from benchmark.results.store import ResultStore

    store = ResultStore(tmp_path / "records")
    for r in [rec(e, d, p, v) for e, v in (("a", 0.9), ("b", 0.8)) for d in ("digits", "mnist5k")
              for p in ("knn", "cluster")]:
        store.write(r)
    out = tmp_path / "board"
    (out / "plots").mkdir(parents=True)
    for stale in ("bars-linear.png", "bars-linear.svg", "curves-run-gone.png"):
        (out / "plots" / stale).write_text("old")
    (out / "plots" / "depth.png").write_text("another command's plot")
    assert main(["leaderboard", "--results", str(tmp_path / "records"), "--protocol", "cluster", "--out",
                 str(out)]) == 0
    assert sorted(p.name for p in (out / "plots").iterdir()) == ["bars-cluster.png", "bars-cluster.svg",
                                                                 "depth.png"]
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<h2>knn: plots</h2>" not in page and page.count('src="data:image/svg+xml;base64,') == 1
