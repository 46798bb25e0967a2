"""The methods board from real record files (written with make_record and the store, read back by the CLI):
one row per (method, backbone) grouped by backbone, offline kNN/linear beside the run's final online probe,
their difference, RankMe, and the pretraining columns blank for the floors; records without a watch curve
(the board's older ones) render those columns blank; the page draws each run's curves from its records."""

from __future__ import annotations

import math

import pytest

from benchmark.cli import main
from benchmark.leaderboards.methods import _delta, backbone_short, methods_frame, training_time, wilson_half
from benchmark.results.record import make_record
from benchmark.results.store import ResultStore, load_records

RESNET = "timm/resnet18[img_size=32,pretrained=false]"
VIT = "timm/vit_tiny_patch16_224[img_size=32,patch_size=4,pretrained=false]"
# offline top-1 per (encoder, protocol), and each run's watch curve (None: trained without --probe-every)
OFFLINE = {"dino-r": (0.801, 0.842), "simclr-r": (0.775, 0.828), "dino-v": (0.702, 0.761), "mae-v": (0.55, 0.68),
           RESNET: (0.266, 0.253), VIT: (0.31, 0.29), "pixels": (0.846, 0.846)}


def _point(step: int, knn: float, linear: float, rankme: float, heldout: int = 500) -> dict:
    return {"step": step, "rankme": rankme, "std": 0.03, "loss": 5.0 - step / 100, "knn": knn, "linear": linear,
            "lr": 0.05 * (1 - step / 300), "probe_n": 1000, "heldout_n": heldout}


CURVES = {"dino-r": [_point(100, 0.70, 0.76, 40.0), _point(200, 0.79, 0.836, 61.5)],
          "simclr-r": None,
          # a newer run: the probe's chosen C in its points, the checks' time in its result
          "dino-v": [_point(100, 0.66, 0.70, 20.0), {**_point(200, 0.712, 0.774, 33.25), "probe_C": 10.0}],
          # the last check ran the monitors only (a run stopped early): the probe comes from the check before
          "mae-v": [_point(100, 0.50, 0.664, 12.0), {"step": 150, "rankme": 14.0, "std": 0.02, "loss": 0.4}]}
RUNS = {"dino-r": ("dino", RESNET), "simclr-r": ("simclr", RESNET), "dino-v": ("dino", VIT),
        "mae-v": ("mae", VIT)}


def _encoder(key: str) -> dict:
    if key in RUNS:
        method, backbone = RUNS[key]
        result = {"steps": 200, "seconds": 1234.5, "samples_per_s": 20.7, "peak_memory_bytes": 3 * 2**30}
        if CURVES[key] is not None:
            result["watch_curve"] = CURVES[key]
        if key == "dino-v":  # 200 steps of 128 in 1234.5 - 240 s of training
            result.update(watch_seconds=240.0, train_samples_per_s=200 * 128 / 994.5)
        return {"name": f"run:{key}", "label": f"run:{key}", "weights": f"pretrained-run:{method}",
                "pretraining": {"method": method, "backbone": backbone, "seed": 0,
                                "data": {"dataset": "fashion-mnist", "size": 60000},
                                "budget": {"steps": 200}, "result": result}}
    if key == "pixels":
        return {"name": "pixels", "label": "pixels", "weights": None}
    return {"name": key.split("[")[0], "label": key, "weights": "random-init(seed=0)"}


def write_board(folder) -> None:
    store = ResultStore(folder)
    for key, values in OFFLINE.items():
        for protocol, value in zip(("knn", "linear"), values, strict=True):
            store.write(make_record(
                encoder=_encoder(key), dataset={"name": "fashion-mnist", "label": "fashion-mnist"},
                protocol={"name": protocol, "label": protocol, "primary_metric": "top1"},
                metrics={"top1": value, "top1_ci95": [value - 0.008, value + 0.008], "n_test": 10000}, seed=0,
                precision="fp32", timings={}, environment={}, error=None, config_digest="0",
                created_at="2026-12-01T00:00:00+00:00"))


@pytest.fixture
def records(tmp_path):
    write_board(tmp_path / "records")
    return list(load_records(tmp_path / "records"))


def test_one_row_per_method_and_backbone_grouped_by_backbone_with_floors_last_in_their_group(records):
    frame = methods_frame(records)
    assert list(frame["label"]) == ["dino · resnet18", "simclr · resnet18", "random init · resnet18",
                                    "dino · vit_tiny_patch4_32", "mae · vit_tiny_patch4_32",
                                    "random init · vit_tiny_patch4_32", "raw pixels"]
    assert list(frame["backbone"]) == [RESNET] * 3 + [VIT] * 3 + ["pixels"]


def test_online_probe_its_difference_from_the_offline_probe_and_rankme(records):
    rows = methods_frame(records).set_index("label")
    dino = rows.loc["dino · resnet18"]
    # the last check's online probe, ± half the Wilson interval over the 500 held-out samples
    assert dino["online probe"] == "1000 / 500"  # the sizes of the probe's labelled and held-out subsets
    assert dino["online knn"] == f"79.0 ± {wilson_half(0.79, 500) * 100:.1f}"
    assert dino["online linear"] == f"83.6 ± {wilson_half(0.836, 500) * 100:.1f}"
    assert (dino["Δ linear"], dino["Δ knn"]) == ("−0.6", "−1.1")  # 83.6 - 84.2, 79.0 - 80.1
    assert dino["RankMe"] == "61.5" and dino["linear"] == "84.2 ± 0.8"
    vit = rows.loc["dino · vit_tiny_patch4_32"]
    assert (vit["Δ linear"], vit["Δ knn"], vit["RankMe"]) == ("+1.3", "+1.0", "33.2")
    mae = rows.loc["mae · vit_tiny_patch4_32"]  # probe from step 100, RankMe from the monitors-only step 150
    assert (mae["online linear"].split(" ")[0], mae["Δ linear"], mae["RankMe"]) == ("66.4", "−1.6", "14.0")
    for blank in ("simclr · resnet18", "random init · resnet18", "raw pixels"):  # no watch curve: blank, not 0
        assert set(rows.loc[blank, ["online knn", "online linear", "Δ knn", "Δ linear", "RankMe"]]) == {"–"}
    for floor in ("random init · resnet18", "random init · vit_tiny_patch4_32", "raw pixels"):
        assert set(rows.loc[floor, ["trained on", "budget", "steps", "wall time", "samples/s", "peak memory"]]) \
            == {"–"}
    assert rows.loc["simclr · resnet18", ["wall time", "samples/s", "peak memory"]].tolist() == [
        "1234 s", "21", "3072 MiB"]
    # a run that timed its checks: wall time says how much they took, samples/s is the training steps' own
    assert rows.loc["dino · vit_tiny_patch4_32", ["wall time", "samples/s", "online probe"]].tolist() == [
        "1234 s (240 s checks)", "26", "1000 / 500, C 10"]


def test_a_difference_that_rounds_to_zero_has_no_sign():
    # online 79.96 against offline 80.00 is -0.04 points: shown as 0.0, not "−0.0" (which reads as a loss)
    assert [_delta(0.7996, 0.80), _delta(0.8004, 0.80), _delta(0.7994, 0.80), _delta(0.8006, 0.80)] == [
        "0.0", "0.0", "−0.1", "+0.1"]
    assert _delta(None, 0.8) == "–"


def test_training_time_leaves_out_the_checks_only_where_the_run_timed_them():
    assert training_time({"seconds": 100.0, "watch_seconds": 30.0}) == (70.0, True)
    # checks that took all the time (or none, or more: a malformed record) are not a training time
    for watched in (0.0, 100.0, 130.0, None, "30", True):
        assert training_time({"seconds": 100.0, "watch_seconds": watched}) == (100.0, False)
    assert training_time({}) == (None, False)


def test_wilson_half_width_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for successes, n in ((418, 500), (3, 20), (500, 500), (0, 12), (6017, 10000)):
        ci = stats.binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_half(successes / n, n) == pytest.approx((ci.high - ci.low) / 2, rel=1e-9, abs=1e-12)


def test_a_malformed_watch_curve_renders_blank_columns(tmp_path):
    enc = _encoder("dino-r")
    enc["pretraining"]["result"]["watch_curve"] = [
        "x", {"step": "3", "knn": 0.5}, {"step": 4, "knn": math.nan, "linear": "high", "rankme": None}, {}]
    rec = make_record(encoder=enc, dataset={"name": "d", "label": "d"},
                      protocol={"name": "linear", "label": "linear", "primary_metric": "top1"},
                      metrics={"top1": 0.5}, seed=0, precision="fp32", timings={}, environment={}, error=None,
                      config_digest="0")
    row = methods_frame([rec]).iloc[0]
    assert set(row[["online knn", "online linear", "Δ knn", "Δ linear", "RankMe"]]) == {"–"}


def test_short_backbone_names():
    assert backbone_short(RESNET) == "resnet18"
    assert backbone_short(VIT) == "vit_tiny_patch4_32"
    assert backbone_short("timm/vit_small_patch16_224") == "vit_small_patch16_224"
    assert backbone_short("timm/vit_small_patch16_224[img_size=64]") == "vit_small_patch16_64"
    assert backbone_short("pixels") == "pixels" and backbone_short("bad[") == "bad["


def test_the_cli_renders_the_table_with_its_note(tmp_path, capsys):
    write_board(tmp_path / "records")
    assert main(["leaderboard", "--table", "methods", "--results", str(tmp_path / "records"),
                 "--out", str(tmp_path / "methods.md")]) == 0
    text = (tmp_path / "methods.md").read_text(encoding="utf-8")
    header, _, *lines = text.splitlines()
    assert [c.strip() for c in header.strip("|").split("|")][7:14] == [
        "knn", "linear", "online probe", "online knn", "online linear", "Δ knn", "Δ linear"]
    dino = next(line for line in lines if line.startswith("| dino · resnet18"))
    assert "| −0.6 " in dino and "| 61.5 " in dino
    assert "held-out subset" in text and "Δ: online minus offline" in text


@pytest.mark.slow  # draws every plot of the page (seconds on a shared CPU)
def test_the_page_draws_each_watched_runs_curves_from_its_records(tmp_path):
    from benchmark.leaderboards.run_curves import curves_caption, runs_of
    from benchmark.methods.curves import curves_figure

    write_board(tmp_path / "records")
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(tmp_path / "records"), "--out", str(out)]) == 0
    curves = sorted(p.name for p in (out / "plots").glob("curves-*.svg"))
    assert curves == ["curves-run-dino-r.svg", "curves-run-dino-v.svg", "curves-run-mae-v.svg"]  # not simclr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "Training curves" in page and "trained without --probe-every): simclr · resnet18." in page
    assert page.count('alt="Training curves, plot') == len(curves)
    records = list(load_records(tmp_path / "records"))
    assert "simclr · resnet18" in curves_caption(records)
    fig = curves_figure(CURVES["dino-r"])
    loss, lr, acc, rank = fig.axes
    assert list(acc.get_lines()[0].get_ydata()) == pytest.approx([70.0, 79.0])  # online kNN, percent
    assert list(acc.get_lines()[1].get_ydata()) == pytest.approx([76.0, 83.6])
    assert list(lr.get_lines()[0].get_xdata()) == [100, 200]
    assert list(rank.get_lines()[0].get_ydata()) == [40.0, 61.5]
    assert list(loss.get_lines()[0].get_ydata()) == [4.0, 3.0]
    assert set(runs_of(records)) == {"run:dino-r", "run:simclr-r", "run:dino-v", "run:mae-v"}
