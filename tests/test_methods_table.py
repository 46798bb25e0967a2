"""The methods table (markdown and page): reference rows only on the datasets the pretraining runs were
evaluated on (no text encoders among image methods), and no raw pandas index column on the page."""

from __future__ import annotations

from benchmark.leaderboards.methods import methods_frame
from benchmark.leaderboards.page import _table
from benchmark.results.record import Record


def _rec(encoder: dict, dataset: str, value: float, created: str = "2026-01-01") -> Record:
    return Record.from_json({
        "schema_version": 1, "id": f"{encoder['label']}{dataset}", "status": "ok", "created_at": created,
        "encoder": encoder, "dataset": {"name": dataset, "label": dataset},
        "protocol": {"name": "knn", "label": "knn"}, "metrics": {"top1": value, "top1_ci95": [value - 0.01, value + 0.01]},
        "seed": 0, "timings": {}, "environment": {}, "error": None})


RUN = {"name": "run:simclr__x", "label": "run:simclr__x", "weights": "pretrained-run:simclr",
       "pretraining": {"method": "simclr", "backbone": "timm/resnet18", "data": {"dataset": "digits", "size": 9},
                       "budget": {"steps": 3}, "result": {"steps": 3, "seconds": 2.0, "samples_per_s": 9.0}}}


def test_references_only_beside_runs_and_a_fresh_index():
    records = [_rec({"name": "pixels", "label": "pixels"}, "digits", 0.9),
               _rec({"name": "text/all-MiniLM-L6-v2", "label": "text/all-MiniLM-L6-v2", "weights": "pretrained:x"},
                    "r8", 0.8),
               _rec(RUN, "digits", 0.7), _rec(RUN, "mnist5k", 0.6)]
    frame = methods_frame(records)
    assert list(zip(frame["method"], frame["evaluated on"], strict=True)) == [
        ("simclr", "digits"), ("none: raw pixels", "digits"), ("simclr", "mnist5k")]
    assert list(frame.index) == [0, 1, 2]
    html = _table(frame)
    assert '<th scope="row">' not in html and html.count("<th scope=\"col\"") == len(frame.columns)


def test_without_runs_every_reference_stays():
    records = [_rec({"name": "pixels", "label": "pixels"}, "digits", 0.9),
               _rec({"name": "tfidf", "label": "tfidf", "weights": "fitted"}, "r8", 0.8)]
    assert sorted(methods_frame(records)["evaluated on"]) == ["digits", "r8"]
