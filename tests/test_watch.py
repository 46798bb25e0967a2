"""The loop's online probe and collapse monitors (benchmark.methods.watch): RankMe and the std of normalised
embeddings against hand computations, a collapsing method flagged (and stopped) within the first interval, a
healthy one not, labels never reaching the objective, and a watched run training bit-identically to an unwatched
one (also across a pause and resume)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_methods_builtin import tiny_backbone

from benchmark.errors import OptionError
from benchmark.methods.trainer import train
from benchmark.methods.views import ImageViews, MultiView
from benchmark.methods.watch import Watch, effective_rank, normalized_std
from benchmark.specs import Backbone, Budget, Split, TrainDefaults

import helpers


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- the monitors' numbers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 7])
def test_rankme_of_k_equal_singular_values_is_k(k):
    g = torch.Generator().manual_seed(k)
    u, _ = torch.linalg.qr(torch.randn(40, 10, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(16, 10, generator=g, dtype=torch.float64))
    z = u[:, :k] @ torch.diag(torch.full((k,), 3.0, dtype=torch.float64)) @ v[:, :k].T
    assert effective_rank(z) == pytest.approx(k, rel=1e-4)  # the 1e-7 of RankMe moves it by ~1e-5


def test_rankme_matches_the_formula_by_hand():
    z = torch.randn(30, 6, generator=torch.Generator().manual_seed(1))
    sigma = np.linalg.svd(z.double().numpy(), compute_uv=False)
    p = sigma / sigma.sum() + 1e-7
    assert effective_rank(z) == pytest.approx(math.exp(-sum(q * math.log(q) for q in p)), rel=1e-9)
    assert effective_rank(torch.zeros(5, 3)) == 0.0


def test_std_of_normalised_embeddings_is_zero_when_collapsed_and_near_1_over_sqrt_d_when_spread():
    assert normalized_std(torch.ones(50, 8) * 3) == pytest.approx(0.0, abs=1e-12)
    z = torch.randn(4000, 64, generator=torch.Generator().manual_seed(0))
    assert normalized_std(z) == pytest.approx(1 / math.sqrt(64), rel=0.05)
    rows = torch.nn.functional.normalize(z[:5].double(), dim=1).tolist()
    by_hand = sum(math.sqrt(sum((r[j] - sum(q[j] for q in rows) / 5) ** 2 for r in rows) / 5) for j in range(64)) / 64
    assert normalized_std(z[:5]) == pytest.approx(by_hand, rel=1e-9)


def test_watch_options_are_checked():
    with pytest.raises(OptionError, match="every"):
        Watch(every=0)
    with pytest.raises(OptionError, match="C"):
        Watch(C=0.0)


# --- in the loop ---------------------------------------------------------------------------------------------------
class ConstantEncoder(torch.nn.Module):
    """Wraps a backbone but returns the same vector for every input (a deliberately collapsed method)."""

    def __init__(self, inner) -> None:
        super().__init__()
        self.backbone = inner.backbone
        self.constant = torch.nn.Parameter(torch.linspace(-1, 1, inner.embed_dim))
        self.embed_dim = inner.embed_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.constant.expand(x.shape[0], -1) + 0 * self.backbone(x).sum()


class Recorder(torch.nn.Module):
    """Two views, an InfoNCE-like loss; remembers the labels it was given."""

    def __init__(self, backbone: Backbone) -> None:
        super().__init__()
        self.encoder = backbone.encoder
        self.head = torch.nn.Linear(backbone.embed_dim, 8)
        self.labels_seen: list = []

    def forward(self, views, labels=None):
        self.labels_seen.append(labels)
        a, b = (torch.nn.functional.normalize(self.head(self.encoder.encode(v)), dim=1) for v in views)
        logits = a @ b.T / 0.5
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(a)))


class Method:
    def __init__(self, objective: torch.nn.Module, backbone: Backbone) -> None:
        augment = ImageViews(backbone, crop_scale=(0.5, 1.0), color_jitter=0.0, grayscale_p=0.0)
        self.objective, self.momentum_pairs = objective, ()
        self.views = MultiView(augment, augment)
        self.defaults = TrainDefaults(optimizer="sgd", lr=0.05, reference_batch=8, batch_size=8, weight_decay=0.0)


def _data(n: int = 48) -> Split:
    """Images whose class is a bright band (helpers.tiny_images), so features of any conv net separate them."""
    return helpers.tiny_images(n=n, size=16, classes=3).split("train")


def _run(objective_cls, tmp_path, watch: Watch | None, budget: int = 6, encoder=None, **kwargs):
    backbone = tiny_backbone(size=16)
    if encoder is not None:
        backbone = Backbone(None, encoder(backbone.encoder), backbone.embed_dim, backbone.input_size, backbone.mean,
                            backbone.std)
    torch.manual_seed(0)
    method = Method(objective_cls(backbone), backbone)
    kwargs.setdefault("workdir", tmp_path / "work")
    result = train(method, backbone, _data(), budget=Budget(steps=budget), config_digest="w", method_name="t",
                   watch=watch, **kwargs)
    return method, result


def test_a_collapsing_method_is_flagged_and_stopped_within_the_first_interval(tmp_path, capsys):
    watch = Watch(every=2, probe=False, stop_on_collapse=True, heldout_size=16)
    _, result = _run(Recorder, tmp_path, watch, encoder=ConstantEncoder)
    assert (result.stopped_by, result.steps) == ("collapse", 2)
    assert "collapse at step 2" in result.collapse and "RankMe" in result.collapse
    assert result.watch_curve[0]["step"] == 2 and result.watch_curve[0]["std"] == pytest.approx(0.0, abs=1e-9)
    err = capsys.readouterr().err
    assert "warning: method 't': collapse at step 2" in err and "stopping" in err
    # without --stop-on-collapse the run goes on, still warned once and recorded
    _, going_on = _run(Recorder, tmp_path / "b", Watch(every=2, probe=False, heldout_size=16),
                       encoder=ConstantEncoder)
    assert going_on.stopped_by == "steps" and going_on.steps == 6 and "step 2" in going_on.collapse
    assert capsys.readouterr().err.count("warning:") == 1


def test_a_healthy_run_is_not_flagged_and_the_probe_scores_the_held_out_subset(tmp_path):
    lines: list[str] = []
    watch = Watch(every=3, probe_size=24, heldout_size=12, knn_k=5)
    method, result = _run(Recorder, tmp_path, watch, log=lines.append)
    assert result.collapse == "" and result.stopped_by == "steps"
    assert [p["step"] for p in result.watch_curve] == [3, 6]
    for point in result.watch_curve:
        assert set(point) == {"step", "rankme", "std", "loss", "knn", "linear", "lr", "probe_n", "heldout_n",
                              "probe_C", "seconds"}
        assert point["seconds"] > 0.0 and point["probe_C"] in (0.001, 0.01, 0.1, 1.0, 10.0)
        assert (point["probe_n"], point["heldout_n"]) == (24, 12)
        assert point["lr"] == result.lr_curve[point["step"] - 1]  # the lr of the step just done
        assert 0.0 <= point["knn"] <= 1.0 and 0.0 <= point["linear"] <= 1.0 and point["rankme"] > 1.2
        assert math.isfinite(point["loss"])
    assert result.watch_curve[-1]["knn"] >= 0.9  # the bands separate the classes for any conv net
    assert any(line.startswith("watch at step 6:") for line in lines)
    assert all(labels is None for labels in method.objective.labels_seen)  # labels never reach the objective


def test_the_online_linear_probe_is_the_linear_protocol_on_the_probe_subsets(tmp_path):
    """The probe's logistic regression chooses C as ``repbench eval --protocol linear`` does (a seeded stratified 20%
    of its labelled subset, the default Cs, refit on all of it): on the same features the two give the same C and
    the same held-out accuracy, so online and offline differ only by the data they see."""
    from benchmark.methods.views import plain_view
    from benchmark.methods.watch import Watcher
    from benchmark.protocols.linear import evaluate_linear

    backbone, data = tiny_backbone(size=16), _data(n=90)
    watch = Watch(every=1, probe_size=50, heldout_size=30, seed=3)
    method = Method(Recorder(backbone), backbone)
    watcher = Watcher(watch, method, backbone, data, torch.device("cpu"), "t")
    point, _ = watcher.check(1, method.objective, lambda line: None)
    view, labels = plain_view(backbone), np.asarray(data.labels)
    with torch.no_grad():
        feats = {name: (backbone.encoder.encode(torch.stack([view(data.samples[i]) for i in idx])).numpy(),
                        labels[idx]) for name, idx in (("train", watcher.probe_idx), ("test", watcher.heldout_idx))}

    class Task:  # the harness's handle over the probe's two subsets
        seed, device, num_classes, encoder_name = watch.seed, "cpu", 3, "t"

        def features(self, split):
            return feats[split]

        def has_split(self, split):
            return split in feats

    offline = evaluate_linear(Task())
    assert point["probe_C"] == offline.chosen["C"]
    assert point["linear"] == pytest.approx(float(np.mean(offline.predictions == feats["test"][1])), abs=1e-12)
    fixed, _ = Watcher(Watch(every=1, probe_size=50, heldout_size=30, seed=3, C=0.01), method, backbone, data,
                       torch.device("cpu"), "t").check(1, method.objective, lambda line: None)
    assert fixed["probe_C"] == 0.01  # a fixed C is used as given


def test_a_watched_run_trains_bit_identically_to_an_unwatched_one_and_resumes(tmp_path):
    plain, _ = _run(Recorder, tmp_path / "plain", None)
    watch = Watch(every=2, probe_size=24, heldout_size=12, knn_k=5)
    watched, full = _run(Recorder, tmp_path / "watched", watch)
    for (name, a), b in zip(plain.objective.state_dict().items(), watched.objective.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    _run(Recorder, tmp_path, watch, pause_at_step=3, workdir=tmp_path / "paused")
    resumed_method, resumed = _run(Recorder, tmp_path, watch, workdir=tmp_path / "paused")
    untimed = [[{k: v for k, v in p.items() if k != "seconds"} for p in r.watch_curve] for r in (resumed, full)]
    assert untimed[0] == untimed[1] and resumed.resumed_from_step == 3  # the same checks; only their times differ
    assert resumed.watch_seconds == pytest.approx(sum(p["seconds"] for p in resumed.watch_curve))
    for a, b in zip(watched.objective.state_dict().values(), resumed_method.objective.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)


def test_a_run_stopped_by_a_collapse_says_why_in_its_record(tmp_path, monkeypatch):
    """Through pretrain(): the run folder's run.json records stopped_by 'collapse' and the monitor's message, and
    the log says training stopped early. (RankMe is forced to 1 so that any backbone counts as collapsed.)"""
    import json

    from test_pretrain_runs import _plugin, _request

    from benchmark.methods import watch as watch_module
    from benchmark.methods.runs import pretrain
    from benchmark.testing import catalog_with

    monkeypatch.setattr(watch_module, "effective_rank", lambda z: 1.0)
    catalog = catalog_with(("t", _plugin()))
    lines: list[str] = []
    folder = pretrain(catalog, _request(catalog, budget="6steps"), tmp_path / "runs", log=lines.append,
                      watch=Watch(every=2, probe=False, stop_on_collapse=True, heldout_size=8))
    result = json.loads((folder / "run.json").read_text())["result"]
    assert (result["stopped_by"], result["steps"]) == ("collapse", 2)
    assert "collapse at step 2: RankMe 1 < 1.2" in result["collapse"]
    assert any(line.startswith("training stopped early: method 'tiny': collapse at step 2") for line in lines)
    assert json.loads((folder / "curves.json").read_text())["collapse"] == result["collapse"]
    # the checks are timed apart from training: the run's result and its last line give both rates
    assert 0.0 < result["watch_seconds"] < result["seconds"]
    assert result["train_samples_per_s"] > result["samples_per_s"] > 0.0
    assert any(f"without the watch's {result['watch_seconds']:.0f} s of checks" in line for line in lines)
