"""The board's per-task-kind means: a mean per kind over every cell of that kind, empty for an encoder that
lacks one, computed from the records' dataset kind (classification when a record has none)."""

from __future__ import annotations

from benchmark.leaderboards.board import build_board
from benchmark.leaderboards.render import to_markdown
from benchmark.results.record import Record


def _rec(encoder: str, dataset: str, protocol: str, metric: str, value: float, kind: str | None) -> Record:
    dataset_block = {"name": dataset, "label": dataset, "modality": "text", "classes": []}
    if kind:
        dataset_block["kind"] = kind
    return Record.from_json({
        "schema_version": 1, "id": f"{encoder}-{dataset}-{protocol}", "status": "ok",
        "encoder": {"name": encoder, "label": encoder, "modality": "text"}, "dataset": dataset_block,
        "protocol": {"name": protocol, "label": protocol, "primary_metric": metric, "higher_is_better": True},
        "metrics": {metric: value}, "seed": 0, "precision": "fp32", "timings": {}, "environment": {},
        "error": None, "created_at": "2026-01-01T00:00:00", "config_digest": "x"})


def test_one_mean_per_kind_over_every_cell_of_the_kind():
    records = [_rec("a", "r8", "knn", "top1", 0.9, None), _rec("b", "r8", "knn", "top1", 0.8, None),
               _rec("a", "sts1", "sts", "spearman", 0.5, "scored-pairs"),
               _rec("a", "sts2", "sts", "spearman", 0.7, "scored-pairs"),
               _rec("b", "sts1", "sts", "spearman", 0.9, "scored-pairs"),  # b lacks sts2: no mean
               _rec("a", "ir", "qrels-retrieval", "ndcg@10", 0.25, "retrieval"),
               _rec("b", "ir", "qrels-retrieval", "ndcg@10", 0.35, "retrieval")]
    board = build_board(records)
    rows = {r["encoder"]: r for r in board.kinds}
    assert rows["a"]["classification"] == 90.0 and rows["b"]["classification"] == 80.0
    assert abs(rows["a"]["scored-pairs"] - 60.0) < 1e-9 and rows["b"]["scored-pairs"] is None
    assert rows["b"]["scored-pairs cells"] == "1/2" and abs(rows["b"]["retrieval"] - 35.0) < 1e-9
    text = to_markdown(board)
    assert "Per-kind means" in text and "| b | 80.0 (1/1) | 35.0 (1/1) | — (1/2) |" in text


def test_a_board_of_one_kind_has_no_kind_table():
    board = build_board([_rec("a", "r8", "knn", "top1", 0.9, None)])
    assert board.kinds == [] and "Per-kind means" not in to_markdown(board)
