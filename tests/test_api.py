"""The Python API (``import repbench``): in-memory encoders and datasets through the same plan and runner as the
CLI, checked against scikit-learn's nearest centroid on features computed by hand."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestCentroid

import repbench
from benchmark.datasets.base import InMemoryDataset
from benchmark.errors import OptionError
from benchmark.results import load_records
from benchmark.specs import Split
from benchmark.testing import catalog_with

from helpers import make_plugin, tiny_images

README = Path(__file__).resolve().parents[1] / "README.md"


def _catalog():
    return catalog_with(("harness_test_plugin", make_plugin()))


def _pixels(img) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)


def _reference(features_of, dataset) -> float:
    """Nearest-centroid accuracy (what helpers' ``centroid`` protocol computes) by scikit-learn."""
    tr, te = dataset.split("train"), dataset.split("test")
    clf = NearestCentroid().fit(features_of(tr.samples), tr.labels)
    return float((clf.predict(features_of(te.samples)) == te.labels).mean())


def _module_features(net, samples) -> np.ndarray:
    with torch.no_grad():
        return net(torch.stack([_pixels(s.convert("RGB")) for s in samples])).numpy()


def test_module_with_preprocess_on_a_dataset_object_matches_sklearn(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 5))
    data = tiny_images(n=40, seed=3)
    records = repbench.evaluate(net, [data], ["centroid"], preprocess=_pixels, name="mlp", catalog=_catalog(),
                                use_cache=False)
    (rec,) = records
    assert isinstance(rec, repbench.Record) and rec.status == "ok"
    assert (rec.encoder.label, rec.dataset.label, rec.protocol.label) == ("mlp", "py/tiny", "centroid")
    assert rec.encoder.plugin == "python-api"
    assert rec.value == pytest.approx(_reference(lambda s: _module_features(net, s), data))
    assert rec.encoder.weights == "in-memory:Sequential"


class BagOfLetters:
    """A sentence-transformers look-alike: ``encode(list[str], batch_size=..., show_progress_bar=...)``."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def get_sentence_embedding_dimension(self) -> int:
        return 26

    def encode(self, sentences, batch_size=32, show_progress_bar=None, convert_to_numpy=True):
        self.calls.append({"batch_size": batch_size, "show_progress_bar": show_progress_bar})
        out = np.zeros((len(sentences), 26), np.float32)
        for i, s in enumerate(sentences):
            for ch in s.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out


def _texts() -> InMemoryDataset:
    rng = np.random.default_rng(0)
    words = [["apple", "banana", "cab"], ["xyz", "wuv", "tux"]]

    def build():
        out = {}
        for split, n in (("train", 30), ("test", 12)):
            labels = np.arange(n) % 2
            out[split] = Split([" ".join(rng.choice(words[c], 3)) for c in labels], labels)
        return out

    return InMemoryDataset("letters", "text", ["abc", "xyz"], build)


def test_sentence_transformers_like_model_on_text(tmp_path):
    model, data = BagOfLetters(), _texts()
    protocols = ["centroid"]
    catalog = _catalog()
    catalog.specs["protocols"]["centroid"] = type(catalog.specs["protocols"]["centroid"])(
        "centroid", evaluate=catalog.specs["protocols"]["centroid"].evaluate, defaults={"fail": False})
    (rec,) = repbench.evaluate(model, [data], protocols, catalog=catalog, use_cache=False)
    assert rec.status == "ok", rec.error
    assert rec.encoder.label == "py/BagOfLetters" and rec.encoder.modality == "text"
    assert model.calls and all(c["show_progress_bar"] is False for c in model.calls)
    assert rec.value == pytest.approx(_reference(lambda s: model.encode(list(s)), data))


class Contract:
    """An object meeting the Encoder contract: used as it is (its own fingerprint and info)."""

    modality, embed_dim, fingerprint = "image", 2, "contract-v1"
    info = {"weights": "two-numbers"}

    def preprocess(self, samples):
        return torch.stack([_pixels(s.convert("RGB")) for s in samples])

    def encode(self, batch):
        return torch.stack([batch.mean((1, 2, 3)), batch[:, :, ::2].mean((1, 2, 3))], 1)


def test_encoder_contract_object_and_records_written_like_the_cli(tmp_path):
    data = tiny_images(n=40, seed=1)
    records = repbench.evaluate(Contract(), [data], "centroid", name="two", results_dir=tmp_path / "res",
                                catalog=_catalog(), use_cache=False)
    on_disk = list(load_records(tmp_path / "res"))
    assert [r.to_json() for r in records] == [r.to_json() for r in on_disk]
    ref = _reference(lambda s: Contract().encode(Contract().preprocess(s)).numpy(), data)
    assert records[0].value == pytest.approx(ref)
    assert records[0].encoder.extra["fingerprint"] == "contract-v1"
    # a rerun finds the finished cell (same resolved options and fingerprint) and does not write it again
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "res").glob("*.json")}
    again = repbench.evaluate(Contract(), [data], "centroid", name="two", results_dir=tmp_path / "res",
                              catalog=_catalog(), use_cache=False)
    assert [r.to_json() for r in again] == [r.to_json() for r in on_disk]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "res").glob("*.json")} == before


def test_changed_weights_under_the_same_name_rerun(tmp_path):
    data = tiny_images(n=40, seed=1)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 6 * 6, 4))
    kw = {"preprocess": _pixels, "name": "net", "results_dir": tmp_path, "catalog": _catalog(), "use_cache": False}
    first = repbench.evaluate(net, [data], ["centroid"], **kw)[0]
    with torch.no_grad():
        net[1].weight.mul_(-3.0).add_(0.5)
    second = repbench.evaluate(net, [data], ["centroid"], **kw)[0]
    assert first.encoder.extra["fingerprint"] != second.encoder.extra["fingerprint"]
    assert second.value == pytest.approx(_reference(lambda s: _module_features(net, s), data))


def test_no_results_dir_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    repbench.evaluate("pixels", [tiny_images()], ["centroid"], catalog=_catalog(), use_cache=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("obj, message", [
    (object(), "not an Encoder"),
    (torch.nn.Linear(3, 3), "pass preprocess="),
])
def test_what_cannot_be_an_encoder_is_one_line(obj, message):
    with pytest.raises(OptionError, match=message) as info:
        repbench.evaluate(obj, [tiny_images()], ["centroid"], catalog=_catalog())
    assert "\n" not in str(info.value)


def test_a_name_taken_by_a_plugin_is_refused():
    net = torch.nn.Flatten()
    with pytest.raises(OptionError, match="'pixels' is taken by plugin"):
        repbench.evaluate(net, [tiny_images()], ["centroid"], preprocess=_pixels, name="pixels", catalog=_catalog())


@pytest.mark.slow
def test_timm_model_matches_the_timm_spec_string():
    """A timm model object (preprocessing from its pretrained_cfg, pooled pre-logits features, classifier kept)
    scores exactly what ``timm/resnet18[pretrained=false,img_size=32]`` scores: same weights, same transform."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=0,
                              pretrained_cfg_overlay={"input_size": (3, 32, 32), "crop_pct": 1.0})
    model.reset_classifier(7)  # a classifier head the API must step around
    data = tiny_images(n=40, size=12, seed=2)
    catalog = _catalog()
    (obj,) = repbench.evaluate(model, [data], ["centroid"], catalog=catalog, use_cache=False)
    (spec,) = repbench.evaluate("timm/resnet18[pretrained=false,img_size=32]", [data], ["centroid"],
                                catalog=catalog, use_cache=False)
    assert obj.encoder.label == "py/resnet18"
    assert obj.encoder.extra["weights_hash"] != spec.encoder.extra["weights_hash"]  # the head differs ...
    assert obj.value == spec.value  # ... the features do not
    assert obj.encoder.extra["preprocess"]["input_size"] == [3, 32, 32]


@pytest.mark.slow
def test_readme_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("### Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 14
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert len(list((tmp_path / "results").glob("*.json"))) == 2
