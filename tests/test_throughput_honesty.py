"""Throughput numbers a reader can trust: a fraction of a peak never above 100% (the matmul peak is the best of
several products; a cell faster than its peak withholds the fraction, saying why), the input size and GMACs in
the table, and a warning when the rounds spread widely."""

from __future__ import annotations

import pytest
from test_throughput import _record

from benchmark.throughput import cli as tp_cli
from benchmark.throughput import peaks
from benchmark.throughput.flops import FlopCount
from benchmark.throughput.measure import Measurement, _derive
from benchmark.throughput.timing import Timing


def _cell_metrics(measured_peak: float, spec_peak: float | None = None):
    cell = Measurement("ok", 4, "fp32", "fp32")
    timing = Timing(4, 1, 1, (0.01, 0.01, 0.01))  # 400 samples/s
    count = FlopCount(total=4 * 10**9, by_op={}, uncounted=[])  # 1 GFLOP per sample: 400 GFLOP/s achieved
    peaks = {"peak_flops_per_s": spec_peak, "peak_source": "x", "measured_peak_flops_per_s": measured_peak,
             "measured_peak_matmul_n": 256}
    return _derive(cell, timing, None, (count, 4), peaks)


def test_a_fraction_of_a_peak_above_one_is_withheld_with_a_reason():
    m = _cell_metrics(measured_peak=100e9, spec_peak=200e9)  # achieved 400 GFLOP/s > both peaks
    assert m["achieved_flops_per_s"] == pytest.approx(400e9)
    assert m["fraction_of_measured_peak"] is None and m["fraction_of_peak"] is None
    assert any("ran faster than it" in note for note in m["peak_withheld"])
    ok = _cell_metrics(measured_peak=800e9)
    assert ok["fraction_of_measured_peak"] == pytest.approx(0.5) and "peak_withheld" not in ok


def test_the_matmul_peak_is_the_fastest_product_not_the_mean(monkeypatch):
    """Products timed 4, 1, 1, 1, 1 ms (a busy first one): the peak is 2 n^3 / 1 ms, not the mean rate."""
    durations = iter([0.02] + [0.004, 0.001, 0.001, 0.001, 0.001] + [0.001] * 1000)

    import contextlib

    @contextlib.contextmanager
    def fake_timed(sync, out):
        yield
        out.append(next(durations))

    monkeypatch.setattr(peaks, "_timed", fake_timed)
    flops, n = peaks.measured_matmul_peak("cpu", "fp32", budget_s=0.0, n_max=256)
    assert n == 256 and flops == pytest.approx(2 * 256**3 / 0.001)


def test_table_shows_input_size_gmacs_and_never_a_peak_above_100_percent():
    record = _record()
    record.metrics.update(flops_per_sample=3.6e9, fraction_of_measured_peak=2.056, fraction_of_peak=0.25)
    text = tp_cli.table([record])
    header, _, row = text.splitlines()[:3]
    cells = dict(zip([h.strip() for h in header.strip("|").split("|")],
                     [c.strip() for c in row.strip("|").split("|")], strict=True))
    assert cells["input"] == "32 px"
    assert float(cells["GMACs/sample"]) == pytest.approx(1.8) and float(cells["GFLOPs/sample"]) == pytest.approx(3.6)
    assert cells["% matmul peak"] == "-" and cells["% spec peak"] == "25.0%"
    assert "205.6%" not in text


def test_a_wide_spread_of_rounds_is_warned_about():
    record = _record()  # rounds of 0.1, 0.2 and 0.3 s: 26.7-80.0 samples/s
    (line,) = tp_cli.spread_warnings([record])
    assert "rounds ranged 26.7-80.0 samples/s (3.0x)" in line and "busy" in line
    record.metrics.update(samples_per_s_min=79.0)
    assert tp_cli.spread_warnings([record]) == []
