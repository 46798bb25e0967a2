"""``repbench eval`` on shift and corrupt datasets end to end: records, info, and the cross-domain number checked
against scikit-learn's kNN on pixel arrays built by hand from the two source datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import KNeighborsClassifier

from benchmark.catalog import Catalog
from benchmark.cli import main
from benchmark.leaderboards import to_frame
from benchmark.leaderboards.robustness import corruption_table, generalisation_gap
from benchmark.results.record import Record

SHIFT = "shift:digits>mnist5k"
NOISE = "corrupt:digits[kind=gaussian_noise,severity=3]"


def _pixels(images, size=None) -> np.ndarray:
    out = []
    for img in images:
        img = img.convert("L")
        if size is not None:
            img = img.resize((size, size), Image.Resampling.BILINEAR)
        out.append(np.asarray(img, dtype=np.float32).ravel() / 255.0)
    return np.stack(out)


@pytest.mark.slow
def test_eval_pixels_knn_on_shift_and_corrupt(capsys, tmp_path):
    args = ["eval", "--encoder", "pixels", "--dataset", f"digits,{SHIFT},{NOISE}",
            "--protocol", "knn,knn[weighting=uniform]", "--results", str(tmp_path / "res"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "shift:digits" in out and "corrupt:digits" in out
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "res").glob("*.json"))]
    assert len(records) == 6 and all(r["status"] == "ok" for r in records)
    by = {(r["dataset"]["label"], r["protocol"]["label"]): r for r in records}

    shift = by[(SHIFT, "knn")]["dataset"]
    assert shift["split_sizes"] == {"train": 1257, "test": 1000} and shift["modality"] == "image"
    assert shift["shared_classes"] == [str(d) for d in range(10)] and shift["dropped_target_classes"] == []
    assert shift["source_dataset"]["label"] == "digits" and shift["target_dataset"]["label"] == "mnist5k"
    assert by[(NOISE, "knn")]["dataset"]["corruption"]["severity"] == 3

    # independent reference: digits' train pixels vs mnist5k's test pixels at 8x8, scikit-learn's cosine kNN
    catalog = Catalog.load()
    digits, mnist = catalog.resolve("datasets", "digits").load(), catalog.resolve("datasets", "mnist5k").load()
    train, test = digits.split("train"), mnist.split("test")
    knn = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute")
    knn.fit(_pixels(train.samples), train.labels)
    expected = float((knn.predict(_pixels(test.samples, size=8)) == test.labels).mean())
    assert by[(SHIFT, "knn[weighting=uniform]")]["metrics"]["top1"] == pytest.approx(expected, abs=1e-9)

    df = to_frame([Record.from_json(r) for r in records])
    gap = generalisation_gap(df).set_index("protocol").loc["knn"]
    in_domain, cross = by[("digits", "knn")]["metrics"]["top1"], by[(SHIFT, "knn")]["metrics"]["top1"]
    assert gap["in_domain"] == pytest.approx(in_domain) and gap["gap"] == pytest.approx(in_domain - cross)
    robust = corruption_table(df).set_index("protocol").loc["knn"]
    assert robust["drop"] == pytest.approx(in_domain - by[(NOISE, "knn")]["metrics"]["top1"])


@pytest.mark.offline_text
@pytest.mark.slow
def test_cli_errors_are_one_line(capsys, tmp_path):
    base = ["--results", str(tmp_path / "res"), "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    # caught when the plan is made, before any data loads: exit 2, one line
    for dataset, words in (("shift:digits>r8", "pair datasets of one modality"),
                           ("corrupt:digits[kind=typo,severity=2]", "valid kinds: gaussian_noise")):
        assert main(["eval", "-e", "pixels", "-d", dataset, "-p", "knn", *base]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1
    # found when the datasets load (their classes): a failed cell whose record says why in one line
    assert main(["eval", "-e", "tfidf", "-d", "shift:r8>rotten-tomatoes", "-p", "knn", *base]) == 1
    record = json.loads(next((tmp_path / "res").glob("*.json")).read_text())
    message = record["error"]["message"]
    assert "share 0 class name(s)" in message and "\n" not in message
