"""Leaderboards from untidy folders (every bad file reported and skipped), markdown escaping, the ± note."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from test_records import good, with_value

from benchmark import leaderboards as leaderboard
from benchmark.errors import RecordError
from benchmark.results import Record, ResultStore, load_records, scan_records

ROOT = Path(__file__).resolve().parents[1] / "leaderboards"

# name -> (content, a fragment of the reason it is skipped for)
ZOO: dict[str, tuple[bytes, str]] = {
    "binary.json": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8", "is not UTF-8 text"),
    "latin1.json": (json.dumps(with_value(good(), "encoder.label", "caf\xe9"), ensure_ascii=False)
                    .encode("latin-1"), "is not UTF-8 text (invalid byte at offset"),
    "truncated.json": (json.dumps(good())[:50].encode(), "is not valid JSON"),
    "deep.json": (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
    "metrics-list.json": (json.dumps(with_value(good(), "metrics", [0.9])).encode(),
                          "field 'metrics' must be an object"),
    "top1-string.json": (json.dumps(with_value(good(), "metrics.top1", "abc")).encode(),
                         "field 'metrics.top1' must be a number in [0, 1], got 'abc'"),
    "label-list.json": (json.dumps(with_value(good(), "encoder.label", ["a", "b"])).encode(),
                        "field 'encoder.label' must be a string, got ['a', 'b']"),
    "created-number.json": (json.dumps(with_value(good(), "created_at", 20260101)).encode(),
                            "field 'created_at' must be a string, got 20260101"),
    "ci-string.json": (json.dumps(with_value(good(), "metrics.top1_ci95", "[0.8, 0.9]")).encode(),
                       "field 'metrics.top1_ci95' must be a pair [low, high] of finite numbers"),
    "top1-negative.json": (json.dumps(with_value(good(), "metrics.top1", -5)).encode(),
                           "field 'metrics.top1' must be a number in [0, 1], got -5"),
    "top1-huge.json": (json.dumps(with_value(good(), "metrics.top1", 1e308)).encode(),
                       "field 'metrics.top1' must be a number in [0, 1], got 1e+308"),
    "top1-infinite.json": (json.dumps(with_value(good(), "metrics.top1", float("inf"))).encode(),
                           "field 'metrics.top1' must be a number in [0, 1], got inf"),
    "status.json": (json.dumps(with_value(good(), "status", "done")).encode(), "field 'status' must be"),
    "array.json": (b"[1, 2]", "a record must be a JSON object"),
}


def _good_record(label: str) -> dict:
    data = with_value(good(), "encoder.label", label)
    return with_value(data, "id", label)


def _zoo(folder: Path) -> dict[Path, str]:
    """Fill ``folder`` with two good records and every kind of bad file; return bad path -> reason fragment."""
    folder.mkdir()
    (folder / "good-a.json").write_text(json.dumps(_good_record("a")))
    expected = {}
    for name, (content, reason) in ZOO.items():
        (folder / name).write_bytes(content)
        expected[folder / name] = reason
    inner = folder / "x.json"  # a folder named like a record: reported, and its records still read
    inner.mkdir()
    (inner / "good-b.json").write_text(json.dumps(_good_record("b")))
    expected[inner] = "is a directory, not a regular file"
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "fifo.json")
        expected[folder / "fifo.json"] = "is a FIFO, not a regular file"
    (folder / "notes.txt").write_text("not a record, not looked at")
    return expected


def _within(seconds: float, fn):
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it blocks, as reading a FIFO would."""
    outcome: dict = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn} blocked (opened a FIFO?)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_scan_reports_every_bad_file_by_name_and_reason_and_reads_the_good_ones(tmp_path):
    expected = _zoo(tmp_path / "res")
    scan = _within(120, lambda: scan_records(tmp_path / "res"))
    assert sorted(r.encoder.label for r in scan.records) == ["a", "b"]
    reasons = dict(scan.skipped)
    assert set(reasons) == set(expected)
    for path, fragment in expected.items():
        assert fragment in reasons[path], (path, reasons[path])
    lines = scan.messages()
    assert lines[-1] == f"2 records read, {len(expected)} files skipped"
    assert f"skipped {tmp_path / 'res' / 'top1-string.json'}: field 'metrics.top1' must be" in "\n".join(lines)
    t = leaderboard.table(leaderboard.to_frame(scan.records))
    assert list(t.index) == ["a", "b"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_a_fifo_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "r.json")
    scan = _within(120, lambda: scan_records(tmp_path / "r.json"))  # given directly, too
    assert scan.records == [] and scan.skipped == [(tmp_path / "r.json", "is a FIFO, not a regular file")]
    with pytest.raises(RecordError, match="is a FIFO"):
        _within(120, lambda: list(load_records(tmp_path)))
    store = ResultStore(tmp_path)
    os.mkfifo(store.path("pixels", "digits", "knn", 0))
    assert _within(120, lambda: store.finished("pixels", "digits", "knn", 0)) is None


@pytest.mark.parametrize("name", sorted(ZOO))
def test_strict_loading_raises_a_record_error_naming_the_file(tmp_path, name):
    content, reason = ZOO[name]
    (tmp_path / name).write_bytes(content)
    with pytest.raises(RecordError) as info:
        list(load_records(tmp_path))
    assert str(info.value).startswith(f"{tmp_path / name}: ") and reason in str(info.value)


def test_strict_loading_reports_a_folder_named_like_a_record(tmp_path):
    (tmp_path / "x.json").mkdir()
    with pytest.raises(RecordError, match=r"x\.json: is a directory, not a regular file"):
        list(load_records(tmp_path))


def test_a_missing_results_path_stays_an_error(tmp_path):
    (tmp_path / "ok.json").write_text(json.dumps(good()))
    for fn in (scan_records, lambda *roots: list(load_records(*roots))):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            fn(tmp_path, tmp_path / "nope")


def test_scan_reads_in_the_order_load_records_does(tmp_path):
    for i in range(5):
        (tmp_path / f"{4 - i}.json").write_text(json.dumps(_good_record(f"e{i}")))
    assert scan_records(tmp_path).records == list(load_records(tmp_path))


def _labelled(encoder: str, dataset: str) -> Record:
    data = with_value(good(), "encoder.label", encoder)
    return Record.from_json(with_value(data, "dataset.label", dataset))


def test_markdown_escapes_pipes_newlines_and_html_in_every_label_and_header():
    evil = "a|b\nc <b>x</b> & `y` \\"
    md = leaderboard.cells_markdown(leaderboard.to_frame([_labelled(evil, evil), _labelled("plain", "digits")]))
    table_lines = md.split("\n\n")[0].splitlines()
    assert len(table_lines) == 4  # header, rule, two rows: the newline did not split a row
    unescaped_pipes = {line.replace("\\|", "").count("|") for line in table_lines}
    assert unescaped_pipes == {5}  # 4 columns (encoder, mean, two datasets): the label's | adds none
    assert "<b>" not in md and "&lt;b&gt;x&lt;/b&gt;" in md and "&amp;" in md
    escaped = "a\\|b<br>c &lt;b&gt;x&lt;/b&gt; &amp; \\`y\\` \\\\"
    assert table_lines[0].count(escaped) == 1 and any(line.startswith(f"| {escaped} ") for line in table_lines)


def test_html_escapes_every_label_and_header():
    page = leaderboard.to_html(leaderboard.to_frame([_labelled("<i>e</i>", "<b>d</b>")]))
    assert "<b>" not in page and "<i>" not in page
    assert "<th>&lt;b&gt;d&lt;/b&gt; / knn</th>" in page and "<th>&lt;i&gt;e&lt;/i&gt;</th>" in page


def test_markdown_and_html_explain_the_plus_minus_and_csv_does_not():
    df = leaderboard.to_frame([Record.from_json(good())])
    md = leaderboard.cells_markdown(df)
    assert md.endswith("\n\n" + leaderboard.NOTE) and "95% confidence interval" in leaderboard.NOTE
    assert "95% confidence interval" in leaderboard.to_html(df)
    assert "confidence" not in leaderboard.to_csv(df)
    assert leaderboard.cells_markdown(leaderboard.to_frame([])) == "(no results)"
