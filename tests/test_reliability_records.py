"""Records with impossible numbers or hostile JSON (issue 19): reported naming the file and field, skipped by the
leaderboard, recomputed by eval; never an OverflowError, a TypeError or an ``inf`` on the board."""

from __future__ import annotations

import json

import pytest
from test_records import good, with_value

from benchmark.cli import main
from benchmark.results import scan_records
from benchmark.results.record import InvalidRecord, Record

HUGE = 10**400

# dotted field -> value, the field named in the error
BAD = [
    ("metrics.top1", HUGE, "metrics.top1"),
    ("metrics.top1_ci95", [0.5, HUGE], "metrics.top1_ci95"),
    ("timings.total_s", HUGE, "timings.total_s"),
    ("timings.total_s", 1e308, "timings.total_s"),
    ("seed", HUGE, "seed"),
    ("metrics.n_test", HUGE, "metrics.n_test"),
    ("encoder.embed_dim", 2**70, "encoder.embed_dim"),
]


@pytest.mark.parametrize(("dotted", "value", "field"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_out_of_range_numbers_are_invalid_records_naming_the_field(dotted, value, field):
    with pytest.raises(InvalidRecord, match=rf"r\.json: field '{field}' must be"):
        Record.from_json(with_value(good(), dotted, value), "r.json")


def _primary(metric: str, value: object) -> dict:
    data = with_value(good(), "protocol.primary_metric", metric)
    return with_value(data, f"metrics.{metric}", value) if not metric.endswith("_ci95") else data


def test_a_primary_metric_must_be_a_bounded_number_and_not_an_interval():
    with pytest.raises(InvalidRecord, match=r"field 'metrics.nmi' must be a finite number"):
        Record.from_json(_primary("nmi", 1e308), "r.json")
    with pytest.raises(InvalidRecord, match=r"field 'metrics.nmi' must be a finite number"):
        Record.from_json(_primary("nmi", HUGE), "r.json")
    with pytest.raises(InvalidRecord, match=r"field 'protocol.primary_metric' must name a numeric metric, got "
                                            r"'top1_ci95'"):
        Record.from_json(_primary("top1_ci95", None), "r.json")
    assert Record.from_json(_primary("nmi", 0.42), "r.json").value == 0.42


# raw file text -> the reason it is skipped
HOSTILE = {
    "digits400.json": (json.dumps(good()).replace('"top1": 0.9', '"top1": 1' + "0" * 400), "an integer of 401 digits"),
    "digits5000.json": (json.dumps(good()).replace('"n_test": 100', '"n_test": 1' + "0" * 5000),
                        "an integer of 5001 digits"),
    "duplicate.json": (json.dumps(good()).replace('"top1": 0.9', '"top1": 0.1, "top1": 0.9'), "duplicate key 'top1'"),
    "nested.json": (json.dumps(with_value(good(), "encoder.custom", json.loads("[" * 200 + "]" * 200))),
                    "nested more than"),
    "total1e308.json": (json.dumps(with_value(good(), "timings.total_s", 1e308)), "field 'timings.total_s'"),
}


def test_hostile_json_files_are_reported_and_skipped_and_good_ones_read(tmp_path):
    for name, (text, _) in HOSTILE.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "ok.json").write_text(json.dumps(good()))
    scan = scan_records(tmp_path)
    assert [r.id for r in scan.records] == ["abc"]
    reasons = {p.name: reason for p, reason in scan.skipped}
    assert set(reasons) == set(HOSTILE)
    for name, (_, fragment) in HOSTILE.items():
        assert fragment in reasons[name], (name, reasons[name])


def test_the_leaderboard_skips_an_impossible_record_and_eval_recomputes_it(tmp_path, capsys):
    res = tmp_path / "res"
    assert main(["eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--results", str(res), "-q"]) == 0
    [path] = res.glob("*.json")
    record = json.loads(path.read_text())
    path.write_text(json.dumps(with_value(record, "timings.total_s", 1)).replace('"total_s": 1', '"total_s": 1'
                                                                                 + "0" * 400))
    (res / "primary.json").write_text(json.dumps(_primary("nmi", 1e308)))
    (res / "ok.json").write_text(json.dumps(good()))
    capsys.readouterr()
    out = tmp_path / "board.json"
    assert main(["leaderboard", "--results", str(res), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert path.name in err and "primary.json" in err and "inf" not in out.read_text()
    # eval finds the cell's record invalid and computes it again (a valid record replaces it)
    assert main(["eval", "-e", "pixels", "-d", "digits", "-p", "knn", "--results", str(res), "-q"]) == 0
    again = json.loads(path.read_text())
    assert again["metrics"] == record["metrics"] and isinstance(again["timings"]["total_s"], float)


def test_a_throughput_record_with_a_huge_integer_is_invalid_not_an_overflow():
    from test_throughput import _record as throughput_record

    from benchmark.results.throughput import ThroughputRecord

    data = throughput_record().to_json()
    data["metrics"]["samples_per_s"] = HUGE
    with pytest.raises(InvalidRecord, match="samples_per_s"):
        ThroughputRecord.from_json(data, "t.json")
