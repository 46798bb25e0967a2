"""The board: MTEB aggregates on a hand-computed frame, encoders missing cells listed apart, the normalised score,
best-marking, and every format (markdown fits a screen, LaTeX booktabs rows, JSON round trip, long-form CSV)."""

from __future__ import annotations

import io
import json
import re

import pandas as pd
import pytest
from test_throughput import _record as throughput_record

from benchmark.errors import OptionError
from benchmark.leaderboards import aggregate as agg
from benchmark.leaderboards.board import build_board
from benchmark.leaderboards.model import Board
from benchmark.leaderboards.render import records_csv, to_json, to_latex, to_markdown, write_board
from benchmark.results.record import Record

# three encoders x three datasets; d2 is a tie between A and B
SCORES = pd.DataFrame({"d1": [0.9, 0.8, 0.7], "d2": [0.8, 0.8, 0.6], "d3": [0.7, 0.6, 0.9]}, index=["A", "B", "C"])
CLASSES = {"d1": 10, "d2": 2, "d3": 4}


def test_mean_rank_and_borda_by_hand():
    # ranks  d1: A1 B2 C3 | d2: A1.5 B1.5 C3 | d3: C1 A2 B3
    assert agg.ranks(SCORES).loc["A"].tolist() == [1.0, 1.5, 2.0]
    assert agg.mean_rank(SCORES).round(4).to_dict() == {"A": 1.5, "B": round(6.5 / 3, 4), "C": round(7 / 3, 4)}
    # Borda: per dataset 3 - rank, summed: A 2+1.5+1, B 1+1.5+0, C 0+0+2
    assert agg.borda(SCORES).to_dict() == {"A": 4.5, "B": 2.5, "C": 2.0}
    assert agg.borda_rank(SCORES).to_dict() == {"A": 1, "B": 2, "C": 3}
    assert agg.order(agg.aggregate(SCORES, None), "borda") == ["A", "B", "C"]
    assert agg.order(agg.aggregate(SCORES, None), "mean") == ["A", "B", "C"]  # B and C tie on 73.3: by name
    assert agg.order(agg.aggregate(SCORES, None), "mean_rank") == ["A", "B", "C"]


def test_a_borda_tie_shares_the_best_rank():
    tie = pd.DataFrame({"x": [0.9, 0.1, 0.5], "y": [0.1, 0.9, 0.5]}, index=["X", "Y", "Z"])
    assert agg.borda(tie).to_dict() == {"X": 2.0, "Y": 2.0, "Z": 2.0}
    assert agg.borda_rank(tie).to_dict() == {"X": 1, "Y": 1, "Z": 1}


def test_normalised_score_between_chance_and_perfect_by_hand():
    floor = pd.Series({d: 1 / c for d, c in CLASSES.items()})
    # A: (0.9-0.1)/0.9, (0.8-0.5)/0.5, (0.7-0.25)/0.75
    expected_a = ((0.8 / 0.9) + 0.6 + 0.6) / 3
    assert agg.normalized(SCORES, floor)["A"] == pytest.approx(expected_a)
    with pytest.raises(ValueError, match="d2"):
        agg.normalized(SCORES, pd.Series({"d1": 0.1, "d2": 1.0, "d3": 0.25}))
    with pytest.raises(ValueError, match="complete table"):
        agg.borda(SCORES.where(SCORES > 0.6))


def rec(encoder, dataset, value, *, protocol="knn", seed=0, status="ok", created="2026-01-01T00:00:00",
        name=None, modality="image", classes=None):
    name = name or dataset.split("[")[0]
    metrics = {} if value is None else {"top1": value, "top1_ci95": [value - 0.02, value + 0.02], "n_test": 200}
    return Record.from_json({
        "schema_version": 1, "id": f"{encoder}{dataset}{protocol}{seed}", "created_at": created, "status": status,
        "encoder": {"name": encoder.split("[")[0], "label": encoder},
        "dataset": {"name": name, "label": dataset, "modality": modality,
                    "classes": [str(i) for i in range(classes or CLASSES.get(name, 10))]},
        "protocol": {"name": protocol, "label": protocol, "primary_metric": "top1"},
        "metrics": metrics, "seed": seed, "timings": {"total_s": 1.0}, "environment": {},
        "error": None if status == "ok" else {"type": "E", "message": "m"}})


def records():
    out = [rec(e, d, SCORES.loc[e, d]) for e in "ABC" for d in ("d1", "d2", "d3")]
    out += [rec("E", "d1", 0.99), rec("E", "d2", 0.99)]  # E lacks d3: listed apart, never ranked first
    out += [rec("F", "d1", 0.5), rec("F", "d2", 0.5), rec("F", "d3", None, status="error")]
    return out


def test_board_ranks_only_complete_encoders_and_lists_the_others_apart():
    (table,) = build_board(records()).tables
    assert [r.key for r in table.rows] == ["A", "B", "C"]
    assert [(r.key, r.missing) for r in table.unranked] == [("E", ["d3"]), ("F", ["d3"])]
    a = table.rows[0]
    assert (a.borda, a.borda_rank, a.mean_rank) == (4.5, 1, 1.5)
    assert a.mean == pytest.approx(80.0) and a.normalized == pytest.approx(100 * ((0.8 / 0.9) + 1.2) / 3)
    # best per column among every row shown (E's 99 on d1 and d2 is the best there)
    best = {(r.key, k) for r in [*table.rows, *table.unranked] for k, c in r.cells.items() if c.best}
    assert best == {("E", "d1"), ("E", "d2"), ("C", "d3")}
    md = to_markdown(build_board(records()))
    assert "Rows ranked by Borda count" in md and "- E: lacks d3" in md and "- F: lacks d3 (error)" in md


def test_ties_are_all_marked_best_and_a_baseline_is_the_floor():
    board = build_board([rec(e, d, SCORES.loc[e, d]) for e in "ABC" for d in ("d1", "d2", "d3")], baseline="C")
    (table,) = board.tables
    best_d2 = [r.key for r in table.rows if r.cells["d2"].best]
    assert best_d2 == ["A", "B"]
    assert table.floor == "baseline C" and next(r for r in table.rows if r.key == "C").normalized == 0.0
    # A against C: (0.9-0.7)/0.3, (0.8-0.6)/0.4, (0.7-0.9)/0.1
    assert table.rows[0].normalized == pytest.approx(100 * (0.2 / 0.3 + 0.5 - 2.0) / 3)
    with pytest.raises(OptionError, match="no record has that encoder"):
        build_board(records(), baseline="nobody")


def test_short_headers_full_specs_in_the_legend_and_markdown_fits_a_screen():
    """The widest built-in suite (four text datasets) with a long encoder name stays within 120 columns."""
    long_enc = "text/all-MiniLM-L6-v2[max_length=128,normalize=false,batch_size=64]"
    recs = [rec(e, d, v) for e, v in ((long_enc, 0.91), ("pixels", 0.90))
            for d in ("fashion-mnist[train_size=3000,test_size=1000]", "20newsgroups[max_chars=500]",
                      "rotten-tomatoes[test_fraction=0.3]", "digits[test_fraction=0.5]")]
    md = to_markdown(build_board(recs))
    header = next(line for line in md.splitlines() if line.startswith("| encoder"))
    assert "[" not in header and "| fashion-mnist" in header
    assert "fashion-mnist = fashion-mnist[train_size=3000,test_size=1000]" in md
    assert f"text/all-MiniLM-L6-v2 = {long_enc}" in md
    assert max(len(line) for line in md.splitlines() if line.startswith("|")) <= 120


def test_two_specs_of_one_dataset_get_distinct_short_labels():
    recs = [rec("A", "d1[size=5]", 0.5), rec("A", "d1[size=9]", 0.6)]
    (table,) = build_board(recs).tables
    assert [c.key for c in table.columns] == ["d1 (1)", "d1 (2)"]
    assert [c.label for c in table.columns] == ["d1[size=5]", "d1[size=9]"]


def test_one_table_per_protocol_and_modality_with_filters():
    recs = [*records(), rec("A", "r8", 0.9, modality="text", name="r8"), rec("A", "d1", 0.7, protocol="linear")]
    board = build_board(recs)
    assert [t.title for t in board.tables] == ["knn (image)", "knn (text)", "linear (image)"]
    assert [t.title for t in build_board(recs, protocols=["linear"]).tables] == ["linear (image)"]
    assert [t.title for t in build_board(recs, modalities=["text"]).tables] == ["knn (text)"]


def test_latex_is_booktabs_with_one_row_per_ranked_encoder_and_escaped_labels():
    recs = [rec(e, d, SCORES.loc[e, d]) for e in "ABC" for d in ("d1", "d2", "d3")]
    recs += [rec("my_enc&co", d, 0.5) for d in ("d1", "d2", "d3")]
    tex = to_latex(build_board(recs))
    lines = tex.splitlines()
    assert lines.index("\\toprule") < lines.index("\\midrule") < lines.index("\\bottomrule")
    body = lines[lines.index("\\midrule") + 1:lines.index("\\bottomrule")]
    header = lines[lines.index("\\toprule") + 1]
    ncols = header.count("&") + 1
    assert ncols == 1 + 3 + 4 and re.search(r"\\begin\{tabular\}\{lr{7}\}", tex)
    separators = re.compile(r"(?<!\\)&")  # an escaped \& in a label is text, not a column break
    assert len(body) == 4 and all(line.endswith(" \\\\") and len(separators.findall(line)) == ncols - 1
                                  for line in body)
    assert any(line.startswith("my\\_enc\\&co & ") for line in body)
    assert "\\textbf{90.0$\\pm$2.0}" in tex


def test_json_round_trips_and_csv_is_the_long_form():
    recs = records()
    board = build_board(recs, [throughput_record("ok")])
    assert Board.from_json(json.loads(to_json(board))) == board
    frame = pd.read_csv(io.StringIO(records_csv(recs)))
    assert len(frame) == len(recs) and {"encoder.label", "dataset.label", "metrics.top1", "seed"} <= set(frame)
    assert json.loads(frame["dataset.classes"].iloc[0]) == [str(i) for i in range(10)]


def test_throughput_table_and_quality_vs_throughput_join_by_encoder_label(tmp_path):
    label = "timm/resnet18[pretrained=false]"
    recs = [rec(label, d, 0.5) for d in ("d1", "d2")] + [rec("A", d, 0.6) for d in ("d1", "d2")]
    board = build_board(recs, [throughput_record("ok"), throughput_record("oom")])
    assert [(r["encoder"], r["status"]) for r in board.throughput] == [(label, "ok"), (label, "oom")]
    (joined,) = board.quality_vs_throughput
    assert joined["encoder"] == label and joined["mean"] == pytest.approx(50.0) and joined["samples/s"] > 0
    md = to_markdown(board)
    assert "### Throughput" in md and "### Quality vs throughput" in md and "oom" in md
    written = write_board(tmp_path / "out", board, recs, [throughput_record("ok")], page=False)
    assert sorted(p.name for p in written) == ["leaderboard.json", "leaderboard.md", "leaderboard.tex",
                                               "records.csv", "throughput.csv"]


@pytest.mark.slow  # draws plots (matplotlib)
def test_the_folder_holds_the_page_with_every_table_and_plot(tmp_path):
    label = "timm/resnet18[pretrained=false]"
    recs = [rec(label, d, 0.5) for d in ("d1", "d2")] + [rec("A", d, 0.6) for d in ("d1", "d2")]
    board = build_board(recs, [throughput_record("ok")])
    written = write_board(tmp_path / "out", board, recs, [throughput_record("ok")])
    names = {p.relative_to(tmp_path / "out").as_posix() for p in written}
    assert {"index.html", "leaderboard.md", "plots/bars-knn.svg", "plots/bars-knn.png"} <= names
    page = (tmp_path / "out" / "index.html").read_text()
    # the board's table (best marked), its legend, the throughput and quality-vs-throughput tables, a plot
    assert "60.0±2.0 ★" in page and "50.0±2.0 ★" not in page and "Ranked by Borda count" in page
    assert ">Throughput<" in page and ">Quality vs throughput<" in page and "data:image/svg+xml" in page


def test_seeds_are_averaged_with_their_spread_and_the_newest_rerun_wins():
    recs = [rec("A", "d1", 0.8, seed=0), rec("A", "d1", 0.9, seed=1),
            rec("A", "d1", 0.1, seed=1, created="2025-01-01T00:00:00")]  # an older run of seed 1
    (table,) = build_board(recs).tables
    cell = table.rows[0].cells["d1"]
    assert (cell.value, cell.seeds) == (pytest.approx(85.0), 2) and cell.half == pytest.approx(100 * 0.1 / 2**0.5)
    assert "85.0±7.1 (n=2)" in to_markdown(build_board(recs))


@pytest.mark.parametrize("name,short", [
    ("run:runs/methods/simclr__timm-resnet18-img_size-32__fashion-mnist__s0__6236682677", "run:simclr"),
    ("imagefolder:/data/pets/", "imagefolder:pets"), ("timm/resnet18", "timm/resnet18"),
    ("shift:digits>mnist5k", "shift:digits>mnist5k")])
def test_family_names_over_paths_get_short_headers(name, short):
    from benchmark.leaderboards.board import short_name

    assert short_name(name) == short


def test_one_short_name_means_one_encoder_across_the_boards_tables():
    a, b, c = ("run:runs/m/simclr__a", "run:runs/m/simclr__b", "run:runs/x/simclr__c")
    recs = [rec(a, "d1", 0.9), rec(b, "d1", 0.8), rec(b, "d1", 0.7, protocol="linear"),
            rec(c, "d1", 0.6, protocol="linear")]
    knn, linear = build_board(recs).tables
    keys = {r.label: r.key for t in (knn, linear) for r in t.rows}
    assert len(set(keys.values())) == 3  # simclr (1), (2), (3): b is the same short name in both tables
    assert {r.key for r in knn.rows} & {r.key for r in linear.rows} == {keys[b]}


def test_normalised_floor_is_zero_for_metrics_without_a_chance_level():
    def nmi(encoder, value):
        r = rec(encoder, "d1", None).to_json()
        r["protocol"]["primary_metric"] = "nmi"
        r["metrics"] = {"nmi": value}
        return Record.from_json(r)

    (table,) = build_board([nmi("A", 0.05), nmi("B", 0.5)]).tables
    assert table.floor.startswith("0 (nmi") and table.rows[1].normalized == pytest.approx(5.0)


def test_a_baseline_at_the_ceiling_is_a_one_line_error():
    with pytest.raises(OptionError, match="--baseline C: .*pick a weaker baseline"):
        build_board([rec("A", "d1", 0.5), rec("C", "d1", 1.0)], baseline="C")


def test_lower_is_better_ranks_the_lowest_mean_first():
    # errors, lower is better: Y and X tie on ranks and Borda; Y's mean error (0.15) beats X's (0.175), and the
    # names would put X first, so only the lower-is-better mean can order them
    errors = pd.DataFrame({"d1": [0.1, 0.2, 0.3], "d2": [0.2, 0.15, 0.4]}, index=["Y", "X", "Z"])
    low = agg.aggregate(errors, None, higher_is_better=False)
    for by in ("mean", "borda", "mean_rank"):
        assert agg.order(low, by, higher_is_better=False) == ["Y", "X", "Z"]
