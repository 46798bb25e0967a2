"""The depth profile from real records of a layers=all run: the long frame, the table, the plot, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.leaderboards.depth import depth_frame, depth_markdown, depth_table, plot_depth
from benchmark.plan import make_plan
from benchmark.results.record import Record
from benchmark.runner import RunConfig, run_plan
from benchmark.testing import catalog_with

from helpers import make_plugin

ENCODER = "timm/resnet18[pretrained=false,img_size=16,layers=all]"
BASE = "timm/resnet18[img_size=16,pretrained=false]"


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> list[Record]:
    catalog = catalog_with(("harness", make_plugin()))
    plan = make_plan(catalog, [ENCODER, "pixels"], ["tiny"], ["knn[k=5]", "centroid"])
    root = tmp_path_factory.mktemp("depth")
    return run_plan(catalog, plan, RunConfig(results_dir=root / "res", cache_dir=root / "cache", quiet=True))


def test_depth_frame_reads_the_layer_of_each_record(records) -> None:
    assert len(records) == 12 and all(r.status == "ok" for r in records)
    df = depth_frame(records)
    assert len(df) == 10 and set(df["encoder"]) == {BASE}  # pixels has no layers: left out
    knn = df[df["protocol"] == "knn[k=5]"]
    assert list(knn["layer"]) == [0, 1, 2, 3, 4] and set(knn["layers"]) == {5}
    assert list(knn["relative_depth"]) == [0.0, 0.25, 0.5, 0.75, 1.0]
    by_label = {r.encoder.label: r.to_json() for r in records if r.protocol.name == "knn"}
    for _, row in knn.iterrows():
        assert row["value"] == by_label[row["layer_label"]]["metrics"]["top1"]
        assert by_label[row["layer_label"]]["encoder"]["layer"]["index"] == row["layer"]


def test_depth_table_marks_the_best_layer(records) -> None:
    df = depth_frame(records)
    table = depth_table(df)
    assert list(table.columns) == ["encoder", "dataset", "layer", "depth", "knn[k=5]", "centroid"]
    assert list(table["depth"]) == ["0.00", "0.25", "0.50", "0.75", "1.00"]
    for prot in ("knn[k=5]", "centroid"):
        values = df[df["protocol"] == prot].set_index("layer")["value"]
        marked = [i for i, cell in enumerate(table[prot]) if cell.endswith(" *")]
        assert marked == [int(values.idxmax())]
    text = depth_markdown(df)
    assert "| encoder" in text and BASE.replace("[", "[") in text and "relative" not in text.split("\n")[0]
    assert depth_markdown(depth_frame([r for r in records if r.encoder.name == "pixels"])).startswith("(no")


def test_plot_writes_png_and_svg(records, tmp_path: Path) -> None:
    paths = plot_depth(depth_frame(records), tmp_path / "profile")
    assert [p.name for p in paths] == ["profile.png", "profile.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text()
    assert "<svg" in svg and "relative depth" in svg and "tiny / knn[k=5]" in svg
    again = plot_depth(depth_frame(records), tmp_path / "again")  # same records, same bytes (no date, no salt)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]


@pytest.mark.slow
def test_cli_layers_all_then_depth(tmp_path: Path, capsys) -> None:
    res = tmp_path / "res"
    code = main(["eval", "--encoder", "timm/resnet18[pretrained=false,img_size=8,layers=all]", "--dataset",
                 "digits", "--protocol", "knn", "--results", str(res), "--cache-dir", str(tmp_path / "c"),
                 "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    for i in range(5):
        assert f"timm/resnet18[img_size=8,layer={i},pretrained=false]" in out
    records = [json.loads(p.read_text()) for p in res.glob("*.json")]
    assert sorted(r["encoder"]["layer"]["index"] for r in records) == [0, 1, 2, 3, 4]
    assert main(["depth", "--results", str(res), "--plot", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "| encoder" in out and out.count("digits") == 5
    assert (tmp_path / "d.png").is_file() and (tmp_path / "d.svg").is_file()
