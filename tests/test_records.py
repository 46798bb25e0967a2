"""The typed record: round trip over the published records, field-by-field errors, make_record, the store."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from benchmark.errors import RecordError
from benchmark.results import (
    DatasetBlock,
    EncoderBlock,
    InvalidRecord,
    Record,
    ResultStore,
    cell_id,
    make_record,
    validate,
)

PUBLISHED_FILES = sorted(Path(__file__).resolve().parents[1].glob("leaderboards/*/records/*.json"))
PUBLISHED = [p for p in PUBLISHED_FILES if not p.name.startswith("throughput__")]
PUBLISHED_THROUGHPUT = [p for p in PUBLISHED_FILES if p.name.startswith("throughput__")]


def good() -> dict:
    """A minimal valid record in the runner's key order, with plugin extras in the blocks."""
    return {
        "schema_version": 1, "id": "abc", "config_digest": "d1", "created_at": "2026-01-01T00:00:00+00:00",
        "status": "ok",
        "encoder": {"weights": "none", "custom": {"x": [1, 2]}, "name": "pixels", "label": "pixels",
                    "options": {}, "plugin": "builtin:pixels", "modality": "image", "embed_dim": 64, "params": None},
        "dataset": {"source": "sklearn", "name": "digits", "label": "digits", "options": {}, "modality": "image",
                    "classes": ["0", "1"]},
        "protocol": {"name": "knn", "label": "knn", "hyperparameters": {"k": 20}, "chosen": {},
                     "primary_metric": "top1", "higher_is_better": True, "plugin": "builtin:protocols"},
        "metrics": {"top1": 0.9, "top1_ci95": [0.85, 0.95], "n_test": 100, "top5@k=20": 1.0, "free": "text"},
        "seed": 0, "precision": "fp32", "timings": {"total_s": 1.5}, "environment": {"torch": "2"}, "error": None,
    }


def with_value(record: dict, dotted: str, value: object) -> dict:
    """A copy of ``record`` with the field at ``dotted`` set to ``value`` (or removed when value is ...)."""
    out = copy.deepcopy(record)
    *parents, last = dotted.split(".")
    target = out
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return out


def test_published_records_exist():
    assert len(PUBLISHED) >= 50


@pytest.mark.parametrize("path", PUBLISHED_THROUGHPUT, ids=lambda p: p.name)
def test_published_throughput_records_round_trip(path):
    from benchmark.results.throughput import ThroughputRecord

    data = json.loads(path.read_text(encoding="utf-8"))
    assert ThroughputRecord.from_json(data, str(path)).to_json() == data


@pytest.mark.parametrize("path", PUBLISHED, ids=lambda p: p.name)
def test_published_records_round_trip_byte_identically(path):
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    back = Record.from_json(data, str(path)).to_json()
    assert back == data
    assert json.dumps(back, indent=2, allow_nan=False) + "\n" == text  # key order too, as write_json writes it


def test_blocks_are_typed_and_keep_plugin_extras():
    rec = Record.from_json(good(), "r.json")
    assert isinstance(rec.encoder, EncoderBlock) and isinstance(rec.dataset, DatasetBlock)
    assert rec.encoder.embed_dim == 64 and rec.encoder.params is None and rec.encoder.weights == "none"
    assert rec.encoder.extra == {"custom": {"x": [1, 2]}} and rec.dataset.extra == {"source": "sklearn"}
    assert rec.metric == "top1" and rec.value == 0.9 and rec.ci == (0.85, 0.95) and rec.n_test == 100
    assert rec.total_s == 1.5 and rec.status == "ok" and rec.error is None
    assert list(rec.to_json()["encoder"]) == list(good()["encoder"])


def test_optional_fields_stay_absent_and_unknown_top_level_keys_survive():
    data = {k: v for k, v in good().items() if k not in ("config_digest", "created_at", "precision")}
    data["encoder"] = {"name": "e"}
    data["future_field"] = {"a": 1}
    rec = Record.from_json(data, "r.json")
    assert rec.created_at is None and rec.encoder.display == "e" and rec.extra == {"future_field": {"a": 1}}
    assert rec.to_json() == data and list(rec.to_json()) == list(data)


@pytest.mark.parametrize("dotted, value, message", [
    ("metrics.top1", "abc", "r.json: field 'metrics.top1' must be a number in [0, 1], got 'abc'"),
    ("metrics.top1", -5, "field 'metrics.top1' must be a number in [0, 1], got -5"),
    ("metrics.top1", 1e308, "field 'metrics.top1' must be a number in [0, 1], got 1e+308"),
    ("metrics.top1", float("nan"), "field 'metrics.top1' must be a number in [0, 1], got nan"),
    ("metrics.top1", True, "field 'metrics.top1' must be a number in [0, 1]"),
    ("metrics.top5@k=20", 2, "field 'metrics.top5@k=20' must be a number in [0, 1]"),
    ("metrics.top1_ci95", "x", "field 'metrics.top1_ci95' must be a pair [low, high] of finite numbers, got 'x'"),
    ("metrics.top1_ci95", [0.9], "field 'metrics.top1_ci95' must be a pair"),
    ("metrics.top1_ci95", [0.95, 0.85], "field 'metrics.top1_ci95' must be a pair [low, high] with low <= high"),
    ("metrics.top1_ci95", [-5, 6], "field 'metrics.top1_ci95' must be an interval [low, high] overlapping [0, 1]"),
    ("metrics.top1_ci95", [85, 95], "field 'metrics.top1_ci95' must be an interval"),
    ("metrics.n_test", -1, "field 'metrics.n_test' must be a non-negative integer, got -1"),
    ("metrics", [1], "field 'metrics' must be an object, got [1]"),
    ("encoder.label", ["a"], "field 'encoder.label' must be a string, got ['a']"),
    ("encoder.embed_dim", "64", "field 'encoder.embed_dim' must be an integer or null, got '64'"),
    ("encoder", 3, "field 'encoder' must be an object, got 3"),
    ("dataset.name", ..., "missing field 'dataset.name'"),
    ("dataset.classes", "0,1", "field 'dataset.classes' must be a list"),
    ("protocol.primary_metric", 1, "field 'protocol.primary_metric' must be a string"),
    ("protocol.higher_is_better", "yes", "field 'protocol.higher_is_better' must be true or false"),
    ("created_at", 5, "field 'created_at' must be a string, got 5"),
    ("status", "done", "field 'status' must be 'ok' or 'error', got 'done'"),
    ("seed", "0", "field 'seed' must be an integer, got '0'"),
    ("seed", True, "field 'seed' must be an integer, got True"),
    ("timings", None, "field 'timings' must be an object, got None"),
    ("timings.total_s", "1s", "field 'timings.total_s' must be a finite number or null, got '1s'"),
    ("error", "boom", "field 'error' must be an object, got 'boom'"),
    ("error", {"type": "E"}, "missing field 'error.message'"),
    ("seed", ..., "missing field(s) seed; is it a repbench result record?"),
    ("schema_version", 2, "schema_version 2 is not supported"),
])
def test_from_json_errors_name_the_file_and_the_dotted_field(dotted, value, message):
    with pytest.raises(InvalidRecord) as info:
        Record.from_json(with_value(good(), dotted, value), "r.json")
    assert str(info.value).startswith("r.json: ") and message in str(info.value)
    assert isinstance(info.value, RecordError) and isinstance(info.value, ValueError)
    assert info.value.where == "r.json" and str(info.value) == f"r.json: {info.value.reason}"


@pytest.mark.parametrize("dotted, value", [
    ("metrics.top1", None),  # the runner writes a non-finite metric as null
    ("metrics.top1_ci95", None),
    ("metrics.top1_ci95", [None, None]),
    ("metrics.top1_ci95", [0.98, 1.004]),  # a Student t interval (few-shot) may cross 1 a little
    ("metrics.top1", 1),
    ("metrics.free", [1, "x"]),  # metrics the tables do not read are free-form
    ("protocol.primary_metric", "f1"),
    ("error", {"type": "E", "message": "m", "where": "extra kept"}),
])
def test_valid_variants_are_accepted(dotted, value):
    data = with_value(good(), dotted, value)
    assert Record.from_json(data, "r.json").to_json() == data


def test_primary_metric_other_than_top1_must_be_a_finite_number():
    data = with_value(with_value(good(), "protocol.primary_metric", "f1"), "metrics.f1", "high")
    with pytest.raises(InvalidRecord, match=r"field 'metrics\.f1' must be a finite number, got 'high'"):
        Record.from_json(data, "r.json")
    assert Record.from_json(with_value(data, "metrics.f1", 42.0), "r.json").value == 42.0


def test_validate_is_a_thin_wrapper_returning_the_same_object():
    data = good()
    assert validate(data, "r.json") is data
    with pytest.raises(RecordError, match=r"x\.json: field 'metrics\.top1'"):
        validate(with_value(data, "metrics.top1", "abc"), "x.json")
    with pytest.raises(RecordError, match="a record must be a JSON object"):
        validate([1], "x.json")


def test_make_record_builds_the_runners_record_through_the_same_validation():
    g = good()
    rec = make_record(encoder=g["encoder"], dataset=g["dataset"], protocol=g["protocol"], metrics=g["metrics"],
                      seed=3, precision="fp32", timings=g["timings"], environment=g["environment"], error=None,
                      config_digest="d1", created_at="2026-01-01T00:00:00+00:00")
    assert rec.id == cell_id("pixels", "digits", "knn", 3) and rec.status == "ok" and rec.seed == 3
    data = rec.to_json()
    assert list(data) == list(g) and Record.from_json(data, "r.json").to_json() == data
    failed = make_record(encoder=g["encoder"], dataset=g["dataset"], protocol=g["protocol"], metrics={}, seed=0,
                         precision="fp32", timings={}, environment={}, error={"type": "E", "message": "m"},
                         config_digest="d1")
    assert failed.status == "error" and failed.error is not None and failed.error.message == "m"
    assert isinstance(failed.created_at, str)
    with pytest.raises(InvalidRecord, match=r"new record pixels x digits x knn: field 'metrics\.top1'"):
        make_record(encoder=g["encoder"], dataset=g["dataset"], protocol=g["protocol"], metrics={"top1": 85.0},
                    seed=0, precision="fp32", timings={}, environment={}, error=None, config_digest="d1")
    with pytest.raises(InvalidRecord, match=r"missing field 'encoder\.label'"):
        make_record(encoder={"name": "e"}, dataset=g["dataset"], protocol=g["protocol"], metrics={}, seed=0,
                    precision="fp32", timings={}, environment={}, error=None, config_digest="d1")


def test_store_writes_typed_records_and_ignores_invalid_ones(tmp_path):
    store = ResultStore(tmp_path)
    path = store.write(Record.from_json(good(), "r.json"))
    assert json.loads(path.read_text()) == good()
    assert store.finished("pixels", "digits", "knn", 0, digest="d1").to_json() == good()
    assert store.finished("pixels", "digits", "knn", 0, digest="other") is None
    path.write_text(json.dumps(with_value(good(), "metrics.top1", "abc")))
    assert store.finished("pixels", "digits", "knn", 0) is None  # invalid: the cell reruns
    path.write_bytes(b"\xff\xfe")
    assert store.finished("pixels", "digits", "knn", 0) is None
