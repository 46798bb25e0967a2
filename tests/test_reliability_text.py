"""Hostile strings in records (issue 19): CSV formula injection quoted, markdown emphasis and links escaped,
NUL and bidi overrides never reach .md/.tex/.html/.csv or the plots' SVG."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pandas as pd
import pytest
from test_board import rec

from benchmark.leaderboards.page import esc
from benchmark.leaderboards.plots import accuracy_throughput_figure, save
from benchmark.leaderboards.render import records_csv, tex_escape
from benchmark.leaderboards.tables import md_escape

HOSTILE = "=HYPERLINK(\"http://evil\",\"x\")"


@pytest.mark.parametrize("label", [HOSTILE, "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted(label):
    text = records_csv([rec(label, "d1", 0.5)])
    row = next(csv.DictReader(io.StringIO(text, newline="")))
    assert row["encoder.label"] == "'" + label.replace("\r", "\n")
    assert float(row["metrics.top1"]) == 0.5  # numbers stay numbers


def test_csv_keeps_ordinary_labels_as_they_are():
    row = next(csv.DictReader(io.StringIO(records_csv([rec("timm/resnet18[pretrained=false]", "d1", 0.5)]))))
    assert row["encoder.label"] == "timm/resnet18[pretrained=false]"


@pytest.mark.parametrize(("text", "shown"), [
    ("*bold*", r"\*bold\*"), ("**b**", r"\*\*b\*\*"), ("_em_", r"\_em\_"), ("~~gone~~", r"\~\~gone\~\~"),
    ("[click](http://evil)", r"[click\](http://evil)"), ("![img](http://evil/x.png)", r"![img\](http://evil/x.png)"),
    ("vit_small_patch16", "vit_small_patch16"), ("simclr__timm", "simclr__timm"), ("91.1 ± 2.4 *", "91.1 ± 2.4 *"),
])
def test_markdown_emphasis_and_link_syntax_is_escaped_and_plain_labels_are_not(text, shown):
    assert md_escape(text) == shown


@pytest.mark.parametrize("render", [md_escape, tex_escape, esc], ids=["md", "tex", "html"])
def test_nul_and_bidi_overrides_never_reach_text_outputs(render):
    out = render("evil\x00name\u202egnp.exe\u2066x\x1b[31m")
    assert not any(ch in out for ch in "\x00\u202e\u2066\x1b")
    assert out.count("\ufffd") == 4


def test_nul_in_csv_is_replaced():
    text = records_csv([rec("a\x00b\u202ec", "d1", 0.5)])
    assert "\x00" not in text and "\u202e" not in text and "a\ufffdb\ufffdc" in text


def test_a_nul_in_a_label_leaves_the_plot_svg_valid_xml(tmp_path):
    points = pd.DataFrame({"encoder": ["evil\x00enc", "fine"], "samples_per_s": [10.0, 100.0],
                           "accuracy": [90.0, 80.0]})
    _, svg = save(accuracy_throughput_figure(points, title="t\x00itle"), tmp_path, "plot")
    ET.parse(svg)  # raises ParseError on a NUL
