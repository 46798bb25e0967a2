"""Features of extreme magnitude (issue 19): float32 arithmetic on them is meaningless, so the protocols refuse
them naming the split, instead of scoring at chance and reporting ok."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.checks import check_features
from benchmark.encoders.pixels import PixelsEncoder
from benchmark.errors import ContractError
from benchmark.plan import make_plan
from benchmark.runner import RunConfig, run_plan
from benchmark.specs import EncoderSpec
from benchmark.testing import catalog_with

import helpers


def scaled(factor: float):
    class Scaled(PixelsEncoder):
        def encode(self, batch):
            return super().encode(batch) * factor

    return Scaled


@pytest.mark.parametrize("factor", [1e37, 1e-44])
@pytest.mark.parametrize("protocol", ["knn", "centroid"])  # centroid: a plugin's protocol that checks nothing
def test_features_of_extreme_magnitude_are_a_contract_error_naming_the_split(tmp_path, factor, protocol):
    catalog = catalog_with(("harness", helpers.make_plugin()))
    catalog.add("encoders", EncoderSpec("scaled", "image", load=scaled(factor)), plugin="test")
    plan = make_plan(catalog, ["scaled", "pixels"], ["tiny[n=60]"], [protocol])
    config = RunConfig(results_dir=tmp_path / "r", use_cache=False, quiet=True)  # one fingerprint
    records = [r.to_json() for r in run_plan(catalog, plan, config)]
    bad, good = sorted(records, key=lambda r: r["encoder"]["label"] != "scaled")
    assert good["status"] == "ok" and good["metrics"]["top1"] > 0.9  # the same pixels, sensibly scaled
    assert bad["status"] == "error" and bad["error"]["type"] == "ContractError"
    # caught where the harness checks the extracted features, before any protocol runs
    assert "encoder 'scaled': split 'train' features have a largest magnitude of" in bad["error"]["message"]
    assert ("overflow" if factor > 1 else "underflow") in bad["error"]["message"]


def test_the_scale_check_by_hand():
    x = np.ones((4, 3), np.float32)
    for ok in (x, x * 1e14, x * 1e-14, np.zeros((4, 3), np.float32), -x * 1e14):
        check_features("knn", "test", ok)
    for bad, side in ((x * 1e16, "overflow"), (-x * 1e16, "overflow"), (x * 1e-16, "underflow")):
        with pytest.raises(ContractError, match=rf"protocol 'knn': test features have a largest magnitude of .*{side}"):
            check_features("knn", "test", bad)
