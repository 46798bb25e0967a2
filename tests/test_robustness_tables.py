"""Robustness (accuracy under corruption, drop, mCE) and the generalisation gap over a hand-built long-form frame,
checked against numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import OptionError
from benchmark.leaderboards.robustness import (
    corruption_table,
    generalisation_gap,
    parse_corrupt,
    parse_shift,
    robustness_summary,
)


def frame(rows: list[tuple]) -> pd.DataFrame:
    """(encoder, dataset, protocol, value[, status[, seed]]) rows as to_frame's columns."""
    out = []
    for row in rows:
        encoder, dataset, protocol, value, *rest = row
        status = rest[0] if rest else "ok"
        seed = rest[1] if len(rest) > 1 else 0
        out.append({"encoder": encoder, "dataset": dataset, "protocol": protocol, "modality": "image", "seed": seed,
                    "status": status, "metric": "top1", "value": value, "ci_low": None, "ci_high": None})
    return pd.DataFrame(out)


def corrupt(kind: str, severity: int, base: str = "digits", extra: str = "") -> str:
    return f"corrupt:{base}[{extra}kind={kind},severity={severity}]"


@pytest.fixture
def results() -> pd.DataFrame:
    rows = [("pixels", "digits", "knn", 0.98), ("resnet", "digits", "knn", 0.90)]
    # pixels: noise at severities 1, 2, 3 (0.9, 0.8, 0.7); blur at 1 only (0.96)
    rows += [("pixels", corrupt("gaussian_noise", s), "knn", v) for s, v in ((1, 0.9), (2, 0.8), (3, 0.7))]
    rows += [("pixels", corrupt("gaussian_blur", 1), "knn", 0.96)]
    # resnet: noise at 1, 2, 3 (0.85, 0.8, 0.75) and blur at 1 (0.88); a failed cell and a second seed
    rows += [("resnet", corrupt("gaussian_noise", s), "knn", v) for s, v in ((1, 0.85), (2, 0.8), (3, 0.75))]
    rows += [("resnet", corrupt("gaussian_blur", 1), "knn", 0.86, "ok", 0),
             ("resnet", corrupt("gaussian_blur", 1), "knn", 0.90, "ok", 1),
             ("resnet", corrupt("gaussian_blur", 2), "knn", None, "error")]
    return frame(rows)


def test_labels_are_read_back():
    assert parse_corrupt("corrupt:digits[base.seed=1,kind=jpeg,seed=2,severity=3]") == ("digits[seed=1]", "jpeg", 3)
    assert parse_corrupt("digits") is None
    assert parse_shift("shift:digits>mnist5k[size=8,source.seed=1,target.test_fraction=0.5]") == \
        ("digits[seed=1]", "mnist5k[test_fraction=0.5]")
    assert parse_shift("shift:corrupt:digits>mnist5k[source.kind=jpeg,source.severity=2]") == \
        ("corrupt:digits[kind=jpeg,severity=2]", "mnist5k")


def test_accuracy_under_corruption_and_drop_averaged_over_severities(results):
    table = corruption_table(results).set_index(["encoder", "kind"])
    noise = table.loc[("pixels", "gaussian_noise")]
    assert noise["severities"] == 3 and noise["clean"] == pytest.approx(0.98)
    assert noise["corrupted"] == pytest.approx((0.9 + 0.8 + 0.7) / 3)
    assert noise["drop"] == pytest.approx(0.98 - 0.8)
    assert np.isnan(noise["ce"])  # no baseline given
    blur = table.loc[("resnet", "gaussian_blur")]
    assert blur["severities"] == 1 and blur["corrupted"] == pytest.approx(0.88)  # seeds averaged, failed cell out
    assert blur["drop"] == pytest.approx(0.90 - 0.88)


def test_corruption_error_relative_to_a_baseline_by_hand(results):
    table = corruption_table(results, baseline="resnet").set_index(["encoder", "kind"])
    noise = table.loc[("pixels", "gaussian_noise")]
    # CE = sum_s E_s / sum_s E_s(baseline) = (0.1 + 0.2 + 0.3) / (0.15 + 0.2 + 0.25)
    assert noise["ce"] == pytest.approx(0.6 / 0.6)
    # relative CE = sum_s (E_s - E_clean) / sum_s (E_s(base) - E_clean(base))
    assert noise["relative_ce"] == pytest.approx((0.08 + 0.18 + 0.28) / (0.05 + 0.10 + 0.15))
    blur = table.loc[("pixels", "gaussian_blur")]
    assert blur["ce"] == pytest.approx(0.04 / 0.12)
    assert blur["relative_ce"] == pytest.approx(0.02 / 0.02)
    assert table.loc[("resnet", "gaussian_noise")]["ce"] == pytest.approx(1.0)
    summary = robustness_summary(corruption_table(results, baseline="resnet")).set_index("encoder")
    assert summary.loc["pixels", "kinds"] == 2
    assert summary.loc["pixels", "mce"] == pytest.approx((1.0 + 0.04 / 0.12) / 2)
    assert summary.loc["pixels", "drop"] == pytest.approx(((0.98 - 0.8) + (0.98 - 0.96)) / 2)
    assert summary.loc["resnet", "relative_mce"] == pytest.approx(1.0)


def test_baseline_severities_are_matched_and_missing_partners_give_nan():
    df = frame([("a", "digits", "knn", 0.9), ("b", "digits", "knn", 0.9),
                ("a", corrupt("jpeg", 1), "knn", 0.8), ("a", corrupt("jpeg", 2), "knn", 0.6),
                ("b", corrupt("jpeg", 2), "knn", 0.7), ("a", corrupt("jpeg", 1, "mnist5k"), "knn", 0.5)])
    table = corruption_table(df, baseline="b").set_index(["encoder", "dataset", "kind"])
    assert table.loc[("a", "digits", "jpeg"), "ce"] == pytest.approx(0.4 / 0.3)  # severity 2 only
    mnist = table.loc[("a", "mnist5k", "jpeg")]
    assert np.isnan(mnist["clean"]) and np.isnan(mnist["drop"]) and np.isnan(mnist["ce"])
    with pytest.raises(OptionError, match="baseline encoder 'c' has no corrupted cell"):
        corruption_table(df, baseline="c")


def test_clean_cell_follows_the_base_options():
    df = frame([("a", "digits", "knn", 0.9), ("a", "digits[seed=1]", "knn", 0.7),
                ("a", corrupt("jpeg", 1, extra="base.seed=1,"), "knn", 0.6)])
    row = corruption_table(df).iloc[0]
    assert row["dataset"] == "digits[seed=1]" and row["drop"] == pytest.approx(0.1)


def test_generalisation_gap_in_domain_minus_cross_domain():
    df = frame([("pixels", "digits", "knn", 0.98), ("pixels", "mnist5k", "knn", 0.93),
                ("pixels", "shift:digits>mnist5k", "knn", 0.23), ("pixels", "shift:mnist5k>digits", "knn", 0.44),
                ("pixels", "shift:digits>mnist5k", "linear", 0.30), ("pixels", "r8", "knn", 0.9)])
    gap = generalisation_gap(df).set_index(["dataset", "protocol"])
    assert gap.loc[("shift:digits>mnist5k", "knn"), "gap"] == pytest.approx(0.98 - 0.23)
    assert gap.loc[("shift:mnist5k>digits", "knn"), "gap"] == pytest.approx(0.93 - 0.44)
    assert np.isnan(gap.loc[("shift:digits>mnist5k", "linear"), "gap"])  # no in-domain linear cell
    assert len(gap) == 3
    target = generalisation_gap(df, reference="target").set_index(["dataset", "protocol"])
    assert target.loc[("shift:digits>mnist5k", "knn"), "in_domain"] == pytest.approx(0.93)
    with pytest.raises(OptionError):
        generalisation_gap(df, reference="both")


def test_empty_frames_give_empty_tables():
    empty = frame([("a", "digits", "knn", 0.9)])
    assert corruption_table(empty).empty and robustness_summary(corruption_table(empty)).empty
    assert generalisation_gap(empty).empty
