"""`repbench import` of hostile or damaged files (issue 19): each a one-line DataError naming the file and the
field; two records for one file are a conflict, never a silent overwrite."""

from __future__ import annotations

import json

import pytest
from test_importers import MTEB_BANKING77, TIMM_BENCH, TIMM_RESULTS

from benchmark.cli import main
from benchmark.errors import DataError
from benchmark.leaderboards.importers import import_file

BENCH_NAME = "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv"


def _mteb(tmp_path, text: str):
    folder = tmp_path / "org__model" / "rev1"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Banking77Classification.json"
    path.write_text(text)
    return path


MAIN = '"main_score": 0.8004220779220779'
MTEB_TEXT = json.dumps(MTEB_BANKING77)


@pytest.mark.parametrize(("text", "message"), [
    (MTEB_TEXT.replace(MAIN, '"main_score": 1' + "0" * 400), r"field 'scores.test\[0\].main_score' must be a finite"),
    (MTEB_TEXT.replace(MAIN, '"main_score": 1' + "0" * 5000), r"field 'scores.test\[0\].main_score' must be a finite"),
    (MTEB_TEXT.replace(MAIN, '"main_score": 85.3'), r"field 'scores.test\[0\].main_score' must be a fraction in "
                                                    r"\[-1, 1\] as MTEB stores it, got 85.3"),
    ("[" * 100_000 + "]" * 100_000, r"cannot read it as JSON \(values nested too deeply"),
    (MTEB_TEXT.replace(MAIN, MAIN + ', "main_score": 0.1'), r"cannot read it as JSON \(duplicate key 'main_score'"),
], ids=["digits400", "digits5000", "percent", "deep", "duplicate"])
def test_hostile_mteb_files_are_one_line_data_errors_naming_the_file_and_field(tmp_path, text, message):
    path = _mteb(tmp_path, text)
    with pytest.raises(DataError, match=message) as info:
        import_file(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def _bench(tmp_path, column: str, value: str):
    header, first, *_ = TIMM_BENCH.splitlines()
    cols = header.split(",")
    cells = first.split(",")
    cells[cols.index(column)] = value
    path = tmp_path / BENCH_NAME
    path.write_text(f"{header}\n{','.join(cells)}\n")
    return path


@pytest.mark.parametrize(("column", "value", "message"), [
    ("param_count", "1e308", r"row 2: column 'param_count' must be a number in \[0, 1e\+07\], got '1e308'"),
    ("infer_img_size", "abc", r"row 2: column 'infer_img_size' must be a number, got 'abc'"),
    ("infer_img_size", "inf", r"row 2: column 'infer_img_size' must be finite, got 'inf'"),
    ("infer_batch_size", "1e300", r"row 2: column 'infer_batch_size' must be a whole number in \[1, 1\.67772e\+07\]"),
    ("infer_samples_per_sec", "1" + "0" * 400, r"row 2: column 'infer_samples_per_sec' must be finite"),
], ids=["params", "img-abc", "img-inf", "batch", "rate-digits"])
def test_hostile_timm_benchmark_cells_are_data_errors_naming_row_and_column(tmp_path, column, value, message):
    path = _bench(tmp_path, column, value)
    with pytest.raises(DataError, match=message) as info:
        import_file(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_a_timm_row_with_top1_above_top5_is_refused(tmp_path):
    path = tmp_path / "results-imagenet.csv"
    path.write_text(TIMM_RESULTS.replace("81.214,18.786,95.498", "96.0,4.0,95.498"))
    with pytest.raises(DataError, match=r"row 4: top1 \(96.0\) is above top5 \(95.498\)"):
        import_file(path)


def test_two_revisions_of_one_model_are_a_conflict_not_a_silent_overwrite(tmp_path, capsys):
    for rev, score in (("rev1", 0.5), ("rev2", 0.9)):
        folder = tmp_path / "in" / "org__model" / rev
        folder.mkdir(parents=True)
        (folder / "Banking77Classification.json").write_text(MTEB_TEXT.replace(MAIN, f'"main_score": {score}'))
    assert main(["import", str(tmp_path / "in"), "--results", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert "model_revision rev1" in err and "model_revision rev2" in err and "overwrite" in err
    assert not (tmp_path / "res").exists()  # nothing written


def test_two_rows_of_one_model_in_a_timm_csv_are_a_conflict(tmp_path, capsys):
    path = tmp_path / "results-imagenet.csv"
    last = TIMM_RESULTS.splitlines()[-1]
    path.write_text(TIMM_RESULTS + last.replace("81.214", "80.0") + "\n")
    assert main(["import", str(path), "--results", str(tmp_path / "res")]) == 2
    err = capsys.readouterr().err
    assert "row 4" in err and "row 5" in err and "timm/resnet50.a1_in1k on imagenet" in err


def test_a_file_named_twice_is_imported_once_without_a_conflict(tmp_path):
    path = tmp_path / "results-imagenet.csv"
    path.write_text(TIMM_RESULTS)
    assert main(["import", str(path), str(tmp_path), "--results", str(tmp_path / "res")]) == 0
    assert len(list((tmp_path / "res").glob("*.json"))) == 3
