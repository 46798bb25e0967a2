"""`repbench import`: MTEB TaskResult JSON and timm's results/benchmark CSVs, read into records marked
published, kept apart from measured ones."""

from __future__ import annotations

import json

import pytest

from benchmark.cli import main
from benchmark.errors import DataError
from benchmark.leaderboards.importers import (
    import_file,
    import_mteb,
    import_timm_benchmark,
    import_timm_results,
)
from benchmark.leaderboards.published import source_frame, split_frame, split_records
from benchmark.results import scan_records
from benchmark.results.record import InvalidRecord, Record
from benchmark.results.throughput import ThroughputRecord, read_throughput

# all-MiniLM-L6-v2 on Banking77 as embeddings-benchmark/results publishes it (mteb 1.12.75), two of ten experiments
MTEB_BANKING77 = {
    "dataset_revision": "0fd18e25b25c072e09e0d92ab615fda904d66300",
    "evaluation_time": 16.33389925956726,
    "kg_co2_emissions": 0.002399409968787791,
    "mteb_version": "1.12.75",
    "scores": {"test": [{
        "accuracy": 0.8004220779220779, "f1": 0.7937884047247287, "f1_weighted": 0.7937884047247288,
        "hf_subset": "default", "languages": ["eng-Latn"], "main_score": 0.8004220779220779,
        "scores_per_experiment": [{"accuracy": 0.798051948051948, "f1": 0.7903491038105259},
                                  {"accuracy": 0.8016233766233766, "f1": 0.7959733840327736}],
    }]},
    "task_name": "Banking77Classification",
}

# the head of timm's results/results-imagenet.csv (a param_count over 1000 is quoted with a thousands comma)
TIMM_RESULTS = """model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation
eva02_large_patch14_448.mim_m38m_ft_in22k_in1k,90.052,9.948,99.048,0.952,305.08,448,1.000,bicubic
eva_giant_patch14_560.m30m_ft_in22k_in1k,89.786,10.214,98.992,1.008,"1,014.45",560,1.000,bicubic
resnet50.a1_in1k,81.214,18.786,95.498,4.502,25.56,288,1.000,bicubic
"""

# rows of timm's results/benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv
TIMM_BENCH = """model,infer_img_size,infer_samples_per_sec,infer_step_time,infer_batch_size,param_count,infer_gmacs,infer_macts
resnet18,160,26266.23,38.966,1024,11.69,0.93,1.27
resnet18,224,13537.15,75.62,1024,11.69,1.82,2.48
vit_small_patch16_224,224,7693.38,133.087,1024,22.05,4.61,11.95
"""


@pytest.fixture
def mteb_file(tmp_path):
    folder = tmp_path / "results" / "sentence-transformers__all-MiniLM-L6-v2" / "8b3219a92973c328a8e22fadcfa821b5dc75636a"
    folder.mkdir(parents=True)
    path = folder / "Banking77Classification.json"
    path.write_text(json.dumps(MTEB_BANKING77, indent=2))
    return path


def test_mteb_task_result(mteb_file):
    (rec,) = import_mteb(mteb_file, url="https://github.com/embeddings-benchmark/results")
    assert rec.source == "published" and rec.origin == "published"
    assert rec.encoder.label == "sentence-transformers/all-MiniLM-L6-v2"
    assert rec.encoder.weights == "8b3219a92973c328a8e22fadcfa821b5dc75636a"  # the revision folder
    assert rec.dataset.label == "Banking77Classification" and rec.dataset.modality == "text"
    assert rec.metric == "main_score" and round(rec.value * 100, 2) == 80.04
    assert rec.metrics["f1"] == pytest.approx(0.7937884047247287)
    assert "scores_per_experiment" not in rec.metrics and rec.total_s == pytest.approx(16.3339, abs=1e-3)
    prov = rec.provenance
    assert prov["file"] == "Banking77Classification.json" and prov["format"] == "mteb-task-result"
    assert prov["url"] == "https://github.com/embeddings-benchmark/results" and prov["mteb_version"] == "1.12.75"
    assert Record.from_json(rec.to_json()).to_json() == rec.to_json()  # round trip


def test_mteb_subsets_splits_and_model_meta(tmp_path):
    data = {**MTEB_BANKING77, "task_name": "MassiveIntentClassification",
            "scores": {"test": [{"main_score": 0.67, "hf_subset": "en", "languages": ["eng-Latn"]},
                                {"main_score": 0.41, "hf_subset": "de", "languages": ["deu-Latn"]}],
                       "validation": [{"main_score": 0.68, "hf_subset": "en"}]}}
    (tmp_path / "Massive.json").write_text(json.dumps(data))
    (tmp_path / "model_meta.json").write_text(json.dumps({"name": "org/model", "revision": "abc"}))
    recs = import_mteb(tmp_path / "Massive.json")
    assert [r.dataset.label for r in recs] == ["MassiveIntentClassification[hf_subset=en]",
                                              "MassiveIntentClassification[hf_subset=de]",
                                              "MassiveIntentClassification[hf_subset=en,split=validation]"]
    assert {r.encoder.label for r in recs} == {"org/model"} and [r.value for r in recs] == [0.67, 0.41, 0.68]
    assert len({r.id for r in recs}) == 3


@pytest.mark.parametrize(("payload", "match"), [
    ({"mteb_dataset_name": "Banking77Classification", "test": {"accuracy": 0.8}}, "before mteb 1.11"),
    ({"task_name": "X"}, "not an MTEB TaskResult"),
    ({"task_name": "X", "scores": {"test": [{"accuracy": 0.8}]}}, r"scores.test\[0\].main_score"),
    ({"task_name": "X", "scores": {"test": [{"main_score": "high"}]}}, "main_score"),
])
def test_mteb_bad_files_name_the_field(tmp_path, payload, match):
    path = tmp_path / "X.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=match):
        import_mteb(path, model="m")


def test_mteb_without_a_model_name_says_how(tmp_path):
    path = tmp_path / "X.json"
    path.write_text(json.dumps(MTEB_BANKING77))
    with pytest.raises(DataError, match="pass --model"):
        import_mteb(path)


def test_timm_results_csv(tmp_path):
    path = tmp_path / "results-imagenet.csv"
    path.write_text(TIMM_RESULTS)
    recs = import_timm_results(path)
    assert [r.encoder.label for r in recs] == ["timm/eva02_large_patch14_448.mim_m38m_ft_in22k_in1k",
                                              "timm/eva_giant_patch14_560.m30m_ft_in22k_in1k", "timm/resnet50.a1_in1k"]
    assert [r.metrics["top1"] for r in recs] == pytest.approx([0.90052, 0.89786, 0.81214])
    assert recs[2].metrics["top5"] == pytest.approx(0.95498)
    assert [r.encoder.params for r in recs] == [305_080_000, 1_014_450_000, 25_560_000]
    assert recs[0].dataset.label == "imagenet" and recs[0].protocol.hyperparameters["img_size"] == "448"
    assert recs[2].provenance["row"] == 4 and all(r.origin == "published" for r in recs)


def test_timm_results_bad_rows(tmp_path):
    path = tmp_path / "results-imagenet.csv"
    path.write_text("model,top1,top5\nresnet50,81.2,abc\n")
    with pytest.raises(DataError, match=r"row 2: column 'top5' must be a number"):
        import_timm_results(path)
    path.write_text("model,top1\nresnet50,81.2\n")
    with pytest.raises(DataError, match="missing column"):
        import_timm_results(path)
    path.write_text("model,top1,top5\nresnet50,0.812,1.5e3\n")
    with pytest.raises(DataError, match="percentages"):
        import_timm_results(path)


def test_timm_benchmark_csv(tmp_path):
    path = tmp_path / "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv"
    path.write_text(TIMM_BENCH)
    recs = import_timm_benchmark(path, url="https://github.com/huggingface/pytorch-image-models/tree/main/results")
    assert [r.label for r in recs] == ["timm/resnet18[img_size=160]", "timm/resnet18", "timm/vit_small_patch16_224"]
    r = recs[1]
    assert r.metrics["samples_per_s"] == 13537.15 and r.timing["median_s"] == pytest.approx(0.07562)
    assert (r.device, r.device_name, r.precision, r.batch_size, r.channels_last, r.compile) == \
        ("cuda", "rtx4090", "fp16", 1024, False, False)
    assert r.encoder["params"] == 11_690_000 and r.extra["source"] == "published"
    assert r.extra["provenance"]["row"] == 3 and len({x.id for x in recs}) == 3
    assert ThroughputRecord.from_json(r.to_json()).to_json() == r.to_json()
    cpu = tmp_path / "benchmark-infer-fp32-nchw-pt240-cpu-i7_12700h-dynamo.csv"
    cpu.write_text(TIMM_BENCH)
    c = import_timm_benchmark(cpu)[0]
    assert (c.device, c.device_name, c.precision, c.compile) == ("cpu", "i7_12700h", "fp32", True)
    odd = tmp_path / "benchmark-infer-mine.csv"
    odd.write_text(TIMM_BENCH)
    with pytest.raises(DataError, match="keep timm's name"):
        import_timm_benchmark(odd)


def test_source_field_is_checked_and_optional(mteb_file):
    data = import_mteb(mteb_file)[0].to_json()
    with pytest.raises(InvalidRecord, match="field 'source' must be 'measured' or 'published'"):
        Record.from_json({**data, "source": "rumour"})
    with pytest.raises(InvalidRecord, match="field 'provenance'"):
        Record.from_json({**data, "provenance": {"format": "x"}})
    measured = {k: v for k, v in data.items() if k not in ("source", "provenance")}
    assert Record.from_json(measured).origin == "measured"
    assert "source" not in Record.from_json(measured).to_json()  # old records round-trip unchanged


def test_published_rows_stay_apart(mteb_file, tmp_path):
    published = import_mteb(mteb_file, url="https://example.org/b77")[0]
    # a measured record with the very same labels: the dedup of to_frame must not let one replace the other
    measured = Record.from_json({**{k: v for k, v in published.to_json().items()
                                    if k not in ("source", "provenance")}, "id": "m1",
                                 "created_at": "2000-01-01T00:00:00+00:00"})
    df = source_frame([published, measured])
    assert list(df["source"]) == ["measured", "published"]
    assert list(df["provenance"]) == ["", "https://example.org/b77"]
    ours, theirs = split_frame(df)
    assert list(ours["id"]) == ["m1"] and list(theirs["id"]) == [published.id]
    assert split_records([published, measured]) == ([measured], [published])
    with pytest.raises(ValueError, match="source_frame"):
        split_frame(df.drop(columns="source"))


def test_cli_import_writes_records_the_leaderboard_reads(mteb_file, tmp_path, capsys):
    csv = tmp_path / "results-imagenet.csv"
    csv.write_text(TIMM_RESULTS)
    bench = tmp_path / "benchmark-infer-amp-nchw-pt240-cu124-rtx4090.csv"
    bench.write_text(TIMM_BENCH)
    out = tmp_path / "imported"
    assert main(["import", str(mteb_file), str(csv), str(bench), "--results", str(out),
                 "--url", "https://example.org"]) == 0
    err = capsys.readouterr().err
    assert "1 record(s)" in err and "3 record(s)" in err and "3 throughput record(s)" in err
    scan = scan_records(out)
    evaluation = [r for r in scan.records if r.source == "published"]
    assert len(evaluation) == 4
    throughput = [read_throughput(p) for p in out.glob("throughput__*.json")]
    assert len(throughput) == 3 and all(t.extra["provenance"]["url"] == "https://example.org" for t in throughput)
    assert main(["import", str(tmp_path / "missing.json"), "--results", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_imports_a_folder_of_mteb_results(mteb_file, tmp_path, capsys):
    (mteb_file.parent / "model_meta.json").write_text(json.dumps({"name": "sentence-transformers/all-MiniLM-L6-v2",
                                                                  "revision": "8b32"}))
    other = {**MTEB_BANKING77, "task_name": "EmotionClassification",
             "scores": {"test": [{"main_score": 0.4176, "accuracy": 0.4176, "hf_subset": "default"}]}}
    (mteb_file.parent / "EmotionClassification.json").write_text(json.dumps(other))
    out = tmp_path / "imported"
    assert main(["import", str(mteb_file.parent.parent), "--results", str(out)]) == 0
    recs = sorted(scan_records(out).records, key=lambda r: r.dataset.label)
    assert [(r.dataset.label, round(r.value, 4)) for r in recs] == [("Banking77Classification", 0.8004),
                                                                  ("EmotionClassification", 0.4176)]
    assert {r.encoder.weights for r in recs} == {"8b32"}


def test_import_file_detects_the_format(mteb_file, tmp_path):
    assert len(import_file(mteb_file)) == 1
    with pytest.raises(DataError, match="pass --format"):
        other = tmp_path / "x.txt"
        other.write_text("")
        import_file(other)
