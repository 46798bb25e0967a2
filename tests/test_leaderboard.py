"""Leaderboard tables from records."""

from __future__ import annotations

import io

import pandas as pd

from benchmark import leaderboards as leaderboard
from benchmark.results.record import Record


def rec(encoder, dataset, protocol, value, *, seed=0, status="ok", created="2026-01-01T00:00:00", ci=None):
    metrics = {} if value is None else {"top1": value, "top1_ci95": ci or [value - 0.01, value + 0.01],
                                        "n_test": 100}
    return Record.from_json({"schema_version": 1, "id": f"{encoder}{dataset}{protocol}{seed}", "created_at": created,
            "status": status, "encoder": {"name": encoder, "label": encoder, "weights": "none"},
            "dataset": {"name": dataset, "label": dataset, "modality": "image"},
            "protocol": {"name": protocol, "label": protocol, "primary_metric": "top1"},
            "metrics": metrics, "seed": seed, "timings": {"total_s": 1.0}, "environment": {},
            "error": None if status == "ok" else {"type": "E", "message": "m"}})


RECORDS = [
    rec("pixels", "digits", "knn", 0.98), rec("pixels", "digits", "linear", 0.96),
    rec("resnet", "digits", "knn", 0.50), rec("resnet", "digits", "linear", None, status="error"),
    rec("minilm", "r8", "knn", 0.92),
]


def test_table_has_encoders_as_rows_sorted_by_mean_and_shows_ci():
    t = leaderboard.table(leaderboard.to_frame(RECORDS))
    assert list(t.index) == ["pixels", "minilm", "resnet"]
    assert list(t.columns) == ["mean", "digits / knn", "digits / linear", "r8 / knn"]
    assert t.loc["pixels", "digits / knn"] == "98.0 ± 1.0"
    assert t.loc["resnet", "digits / linear"] == "error"
    assert t.loc["minilm", "digits / knn"] == "–"  # text and image results side by side, no special case
    assert t.loc["pixels", "mean"] == 97.0


def test_seeds_are_averaged_and_newest_rerun_wins():
    records = [rec("a", "d", "p", 0.5, seed=0, created="2026-01-01"), rec("a", "d", "p", 0.7, seed=0, created="2026-02-01"),
               rec("a", "d", "p", 0.9, seed=1)]
    t = leaderboard.table(leaderboard.to_frame(records))
    assert t.loc["a", "d / p"] == "80.0 ± 14.1 (n=2)"


def test_markdown_csv_and_html_outputs():
    df = leaderboard.to_frame(RECORDS)
    md = leaderboard.cells_markdown(df)
    assert md.splitlines()[0].startswith("| encoder") and "98.0 ± 1.0" in md
    back = pd.read_csv(io.StringIO(leaderboard.to_csv(df)))
    assert len(back) == len(RECORDS) and set(back["status"]) == {"ok", "error"}
    evil = leaderboard.to_frame([rec("<script>alert(1)</script>", "d", "p", 0.5)])
    page = leaderboard.to_html(evil)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert leaderboard.cells_markdown(leaderboard.to_frame([])) == "(no results)"
