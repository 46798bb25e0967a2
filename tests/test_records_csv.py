"""records.csv keeps JSON types: integers stay integers (``encoder.params`` 3371008, ``k`` 20) even in columns
with gaps, floats stay floats, lists are JSON."""

from __future__ import annotations

import csv
import io

from test_board import rec

from benchmark.leaderboards.render import records_csv
from benchmark.results.record import Record


def test_integers_stay_integers_in_columns_with_gaps():
    a = rec("A", "d1", 0.5).to_json()
    a["encoder"]["params"] = 3371008
    a["protocol"]["hyperparameters"] = {"k": 20, "temperature": 0.07}
    b = rec("B", "d1", 0.75).to_json()  # no params, no hyperparameters: gaps in those columns
    rows = list(csv.DictReader(io.StringIO(records_csv([Record.from_json(a), Record.from_json(b)]))))
    assert rows[0]["encoder.params"] == "3371008" and rows[1]["encoder.params"] == ""
    assert rows[0]["protocol.hyperparameters.k"] == "20"
    assert rows[0]["protocol.hyperparameters.temperature"] == "0.07"
    assert rows[0]["metrics.top1"] == "0.5" and rows[0]["metrics.top1_ci95"] == "[0.48, 0.52]"
    assert rows[0]["seed"] == "0"
