"""repbench profile: which cells a profile runs, and its table read back from the records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.catalog import Catalog
from benchmark.cli import main
from benchmark.datasets.corruptions import CORRUPTION_KINDS
from benchmark.errors import OptionError
from benchmark.leaderboards.profile import profile_parts, profile_table
from benchmark.results.record import Record


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load()


def test_the_parts_of_an_image_and_a_text_profile(catalog):
    parts = profile_parts(catalog, ["pixels", "timm/resnet18[pretrained=false,img_size=32]", "tfidf"],
                          severities=[1, 3])
    by = {(p.what, p.encoders[0]): p for p in parts}
    image = by[("in domain", "pixels")]
    assert image.encoders == ("pixels", "timm/resnet18[pretrained=false,img_size=32]")
    assert image.datasets == ("digits", "mnist5k") and "labeleff" in image.protocols
    assert by[("domain shift", "pixels")].datasets == ("shift:digits>mnist5k", "shift:mnist5k>digits")
    corrupt = by[("robustness", "pixels")].datasets
    assert len(corrupt) == 2 * len(CORRUPTION_KINDS["image"]) * 2 and "corrupt:digits[kind=jpeg,severity=3]" in corrupt
    # only the encoder whose spec counts its layers gets the depth probes
    depth = by[("depth", "timm/resnet18[pretrained=false,img_size=32,layers=all]")]
    assert depth.encoders == ("timm/resnet18[pretrained=false,img_size=32,layers=all]",)
    assert by[("domain shift", "tfidf")].datasets == ("shift:r8>r52",)
    assert len(by[("robustness", "tfidf")].datasets) == len(CORRUPTION_KINDS["text"]) * 2
    # every dataset the parts name resolves (shift and corrupt families included)
    for part in parts:
        for d in part.datasets:
            catalog.resolve("datasets", d)


def test_dataset_options_move_under_base_and_bad_requests_fail_in_one_line(catalog):
    parts = profile_parts(catalog, ["pixels"], ["digits[seed=1]"], severities=[2], depth=False)
    assert parts[1].datasets == ("shift:digits>mnist5k[source.seed=1]",)
    assert "corrupt:digits[kind=contrast,severity=2,base.seed=1]" in parts[2].datasets
    with pytest.raises(OptionError, match="no shift partner"):
        profile_parts(catalog, ["pixels"], ["fashion-mnist"])
    with pytest.raises(OptionError, match="severities"):
        profile_parts(catalog, ["pixels"], severities=[6])
    with pytest.raises(OptionError, match="no text dataset"):
        profile_parts(catalog, ["tfidf"], ["digits"])


@pytest.mark.slow
def test_the_profile_table_is_what_the_records_say(tmp_path, capsys):
    code = main(["profile", "-e", "pixels", "-d", "digits", "--severities", "1", "--no-depth", "--results",
                 str(tmp_path / "res"), "--cache-dir", str(tmp_path / "cache"), "-q"])
    assert code == 0
    records = [json.loads(p.read_text()) for p in (tmp_path / "res").glob("*.json")]
    assert len(records) == 5 + 2 + len(CORRUPTION_KINDS["image"])

    def value(dataset, protocol):
        (r,) = [r for r in records if r["dataset"]["label"] == dataset and r["protocol"]["name"] == protocol]
        return r["metrics"][r["protocol"]["primary_metric"]]

    typed = [Record.from_json(r) for r in records]
    (row,) = profile_table(typed).to_dict("records")
    assert row["knn"] == value("digits", "knn") and row["nmi"] == value("digits", "cluster")
    assert row["labeleff auc"] == value("digits", "labeleff") and row["map@r"] == value("digits", "retrieval")
    assert row["shift to"] == "mnist5k"
    assert row["gap"] == pytest.approx(value("digits", "linear") - value("shift:digits>mnist5k", "linear"))
    corrupted = np.mean([value(f"corrupt:digits[kind={k},severity=1]", "knn") for k in CORRUPTION_KINDS["image"]])
    assert row["corrupted knn"] == pytest.approx(corrupted)
    assert row["drop"] == pytest.approx(value("digits", "knn") - corrupted)
    assert "| pixels  |  digits |" in capsys.readouterr().out
    # against itself as the baseline, an encoder's mean corruption error is exactly 1
    (own,) = profile_table(typed, baseline="pixels").to_dict("records")
    assert own["mce"] == pytest.approx(1.0) and "mce" not in profile_table(typed).columns
