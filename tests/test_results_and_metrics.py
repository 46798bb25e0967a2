"""Result records, atomic writes, the bootstrap CI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmark.errors import RecordError
from benchmark.protocols.metrics import bootstrap_ci, score
from benchmark.results import Record, ResultStore, cell_id, load_records, validate
from benchmark.storage.atomic import write_json


def test_bootstrap_ci_matches_an_explicit_resampling_loop():
    rng = np.random.default_rng(0)
    correct = rng.random(400) < 0.8
    lo, hi = bootstrap_ci(correct, seed=1)
    means = [correct[rng.integers(0, len(correct), len(correct))].mean() for _ in range(4000)]
    ref_lo, ref_hi = np.quantile(means, [0.025, 0.975])
    assert abs(lo - ref_lo) < 0.01 and abs(hi - ref_hi) < 0.01
    assert lo < correct.mean() < hi


def test_score_is_deterministic_and_checks_shapes():
    pred, lab = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    assert score(pred, lab, seed=3) == score(pred, lab, seed=3)
    assert score(pred, lab)["top1"] == 0.75
    with pytest.raises(ValueError, match="matching"):
        score(pred[:3], lab)


def test_cell_id_depends_on_every_part():
    base = cell_id("pixels", "digits", "knn", 0)
    assert base == cell_id("pixels", "digits", "knn", 0)
    assert len({base, cell_id("pixels", "digits", "knn", 1), cell_id("pixels", "digits", "linear", 0),
                cell_id("pixels[size=4]", "digits", "knn", 0)}) == 4


def test_atomic_write_leaves_the_old_file_when_serialisation_fails(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"a": 1})
    with pytest.raises(ValueError):
        write_json(target, {"a": float("nan")})  # allow_nan=False: refuse to write non-JSON
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temp file left behind


def test_invalid_records_name_the_file_and_field(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"schema_version": 1}))
    with pytest.raises(RecordError, match=r"bad\.json: missing field"):
        list(load_records(tmp_path))
    with pytest.raises(RecordError, match="schema_version 99"):
        validate({f: {"name": "x"} for f in ("encoder", "dataset", "protocol")} | {
            "schema_version": 99, "id": "x", "status": "ok", "metrics": {}, "seed": 0, "timings": {},
            "environment": {}, "error": None}, "f.json")


def test_store_skips_only_successful_records(tmp_path):
    store = ResultStore(tmp_path)
    rec = {"schema_version": 1, "id": "x", "status": "error", "encoder": {"name": "e", "label": "e"},
           "dataset": {"name": "d", "label": "d"}, "protocol": {"name": "p", "label": "p"}, "metrics": {},
           "seed": 0, "timings": {}, "environment": {}, "error": {"type": "E", "message": "m"}}
    store.write(Record.from_json(rec))
    assert store.finished("e", "d", "p", 0) is None
    store.write(Record.from_json(rec | {"status": "ok", "error": None}))
    assert store.finished("e", "d", "p", 0).status == "ok"
