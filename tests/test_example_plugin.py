"""The first-party example plugin distribution (plugins/repbench-example), tested the way a third party's
would be: in-process with benchmark.testing, then really pip-installed and driven through the `repbench`
command."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.neighbors import KNeighborsClassifier

from benchmark import Encoder
from benchmark.testing import catalog_with, check_dataset

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "repbench-example"
PUBLIC_MODULES = {"benchmark", "benchmark.datasets", "benchmark.encoders", "benchmark.features", "benchmark.testing",
                  "benchmark.errors"}


@pytest.fixture
def plugin(monkeypatch):
    """The plugin module, imported from its source folder (as `pip install -e` would make it importable)."""
    monkeypatch.syspath_prepend(str(PLUGIN_DIR))
    return importlib.import_module("repbench_example.plugin")


@pytest.fixture
def catalog(plugin):
    return catalog_with(("example", plugin))


def features(encoder, samples) -> np.ndarray:
    with torch.inference_mode():
        return encoder.encode(encoder.preprocess(samples)).numpy()


# --- packaging ----------------------------------------------------------------------------------------------

def test_distribution_metadata_declares_the_entry_point():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    assert meta["build-system"]["build-backend"] == "setuptools.build_meta"
    assert meta["project"]["name"] == "repbench-example"
    names = [re.split(r"[<>=!~; \[]", dep)[0] for dep in meta["project"]["dependencies"]]
    assert "repbench" in names
    assert meta["project"]["entry-points"]["repbench"] == {"example": "repbench_example.plugin"}
    assert (PLUGIN_DIR / "repbench_example" / "plugin.py").is_file()
    assert not (PLUGIN_DIR / "plugins").exists()


def test_plugin_imports_only_the_public_api():
    """The template must be copyable by an outsider: no imports of repbench internals."""
    tree = ast.parse((PLUGIN_DIR / "repbench_example" / "plugin.py").read_text())
    used = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    used |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    private = {m for m in used if m.split(".")[0] == "benchmark" and m not in PUBLIC_MODULES}
    assert not private, f"plugin.py imports repbench internals {private}"


# --- in-process: what a plugin author's own tests look like -------------------------------------------------

def test_specs_are_registered_by_the_example_plugin(catalog):
    enc = catalog.specs["encoders"]["example/random-conv"]
    dset = catalog.specs["datasets"]["example/shapes"]
    assert catalog.plugin_of("encoders", enc) == "example"
    assert catalog.plugin_of("datasets", dset) == "example"
    assert catalog.registered_by("example") == {"datasets": ["example/shapes"],
                                                "encoders": ["example/random-conv"],
                                                "methods": ["example-distill", "example-siam"],
                                                "protocols": ["example/centroid"],
                                                "suites": ["example-shapes-v1"]}
    assert dict(catalog.specs["methods"]["example-siam"].defaults) == {"hidden": 64, "crop_min": 0.3, "lr": 0.05}
    assert dict(enc.defaults) == {"width": 16, "img_size": 32, "seed": 0}
    assert {"n_per_class", "size", "seed"} <= set(dset.defaults)
    assert not catalog.errors


def test_shapes_dataset_conforms_and_is_seeded(catalog):
    resolved = catalog.resolve("datasets", "example/shapes[n_per_class=12,size=24,seed=3]")
    ds = resolved.load()
    check_dataset(ds)
    assert ds.classes == ["circle", "square", "triangle", "plus"]
    assert ds.info["split_sizes"] == {"train": 36, "test": 12}
    assert ds.info["n_per_class"] == 12 and ds.info["size"] == 24 and ds.info["seed"] == 3
    for s in ds.splits:
        split = ds.split(s)
        assert np.bincount(split.labels, minlength=4).tolist() == [len(split) // 4] * 4  # stratified
        assert {(img.size, img.mode) for img in split.samples} == {((24, 24), "L")}
    again = resolved.load()
    assert again.fingerprint == ds.fingerprint
    assert np.array_equal(np.asarray(again.split("test").samples[0]), np.asarray(ds.split("test").samples[0]))
    other = catalog.resolve("datasets", "example/shapes[n_per_class=12,size=24,seed=4]").load()
    assert other.fingerprint != ds.fingerprint


@pytest.mark.parametrize("shape", ["circle", "square", "triangle", "plus"])
def test_shapes_have_the_area_geometry_predicts(plugin, shape):
    """Independent check of the drawing: pixel count vs the shape's area formula for the drawn radius."""
    size, seed = 96, 7
    r = np.random.default_rng(seed).uniform(0.2, 0.35) * size  # draw_shape's first draw is the radius
    expected = {"circle": np.pi * r**2, "square": (1.6 * r) ** 2, "triangle": 3 * np.sqrt(3) / 4 * r**2,
                "plus": 2 * (2 * r) * (2 * r / 3) - (2 * r / 3) ** 2}[shape]
    image = plugin.draw_shape(shape, size, np.random.default_rng(seed))
    assert image.shape == (size, size) and 0.6 <= image.max() <= 1.0 and image.min() == 0.0
    assert (image > 0).sum() == pytest.approx(expected, rel=0.05)


def test_unknown_shape_is_named(plugin):
    with pytest.raises(ValueError, match="unknown shape 'hexagon'"):
        plugin.draw_shape("hexagon", 16, np.random.default_rng(0))


def test_random_conv_encoder_gives_features_and_honest_fingerprints(catalog):
    ds = catalog.resolve("datasets", "example/shapes[n_per_class=6,size=20]").load()
    samples = ds.split("train").samples
    state = torch.random.get_rng_state()
    enc = catalog.resolve("encoders", "example/random-conv[width=8,img_size=24]").load()
    assert torch.equal(torch.random.get_rng_state(), state), "loading must not disturb the global torch RNG"
    assert isinstance(enc, Encoder) and enc.modality == "image" and enc.embed_dim == 32
    feats = features(enc, samples)
    assert feats.shape == (len(samples), 32) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert {"weights", "weights_hash", "params"} <= set(enc.info)
    assert enc.info["weights"] == "random-init(seed=0)" and enc.info["params"] > 0

    same = catalog.resolve("encoders", "example/random-conv[width=8,img_size=24]").load()
    assert same.fingerprint == enc.fingerprint
    np.testing.assert_array_equal(features(same, samples), feats)
    reseeded = catalog.resolve("encoders", "example/random-conv[width=8,img_size=24,seed=1]").load()
    assert reseeded.fingerprint != enc.fingerprint
    assert reseeded.info["weights_hash"] != enc.info["weights_hash"]
    resized = catalog.resolve("encoders", "example/random-conv[width=8,img_size=28]").load()
    assert resized.fingerprint != enc.fingerprint  # preprocessing is part of the fingerprint


def test_preprocess_matches_a_hand_computed_normalisation(plugin):
    from PIL import Image

    enc = plugin.load_random_conv(width=4, img_size=8)
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    batch = enc.preprocess([Image.fromarray(pixels)])
    expected = (pixels.astype(np.float32) / 255.0 - 0.5) / 0.5
    assert batch.shape == (1, 3, 8, 8)
    for c in range(3):
        np.testing.assert_allclose(batch[0, c].numpy(), expected, atol=1e-6)


def test_random_features_separate_the_shapes(catalog):
    """kNN (scikit-learn) on the random-conv features does far better than chance (0.25)."""
    ds = catalog.resolve("datasets", "example/shapes[n_per_class=40]").load()
    enc = catalog.resolve("encoders", "example/random-conv").load()
    train, test = ds.split("train"), ds.split("test")
    knn = KNeighborsClassifier(n_neighbors=5).fit(features(enc, train.samples), train.labels)
    assert knn.score(features(enc, test.samples), test.labels) > 0.5


def test_bad_options_are_reported_with_the_spec_name(plugin):
    with pytest.raises(ValueError, match="example/random-conv"):
        plugin.load_random_conv(width=0)
    with pytest.raises(ValueError, match="example/shapes"):
        plugin.load_shapes(n_per_class=1)


def test_a_multicrop_method_with_a_per_step_schedule_fits_in_80_lines_and_trains_through_the_loop(plugin, catalog,
                                                                                                  tmp_path):
    """example-distill proves the public contract: views of two resolutions, ``before_step(info)`` with the
    loop's step, momentum pairs; trained by the core's loop, resumed bit-identically after a pause."""
    from benchmark.methods.runs import trainable_backbone
    from benchmark.methods.trainer import train
    from benchmark.specs import Budget

    source = (PLUGIN_DIR / "repbench_example" / "plugin.py").read_text().splitlines()
    start = next(i for i, line in enumerate(source) if line.startswith("# --- a method with multi-crop"))
    end = next(i for i, line in enumerate(source) if i > start and line.startswith("# --- "))
    assert end - start - 1 < 80
    data = catalog.resolve("datasets", "example/shapes[n_per_class=6]").load().split("train")

    def run(workdir, **kwargs):
        torch.manual_seed(0)
        backbone = trainable_backbone(catalog.resolve("encoders", "example/random-conv"), "cpu")
        method = catalog.resolve("methods", "example-distill[local_crops=2,out_dim=32]")
        built = method.spec.build(backbone, **method.options)
        temps = []
        hook = built.objective.before_step
        built.objective.before_step = lambda info: (hook(info), temps.append(built.objective.teacher_temp))
        result = train(built, backbone, data, budget=Budget(steps=6), workdir=workdir, config_digest="d",
                       batch_size=4, method_name="example-distill", **kwargs)
        return built, result, temps

    built, full, temps = run(tmp_path / "a")
    views = built.views(data.samples[0])
    assert [tuple(v.shape[1:]) for v in views] == [(32, 32)] * 2 + [(16, 16)] * 2  # two resolutions
    assert temps == pytest.approx([0.04 + 0.03 * min(1.0, 2 * k / 6) for k in range(6)])  # the loop's step
    assert full.steps == 6 and all(np.isfinite(full.loss_curve))
    teacher = dict(built.objective.teacher["encoder"].named_parameters())
    assert not any(p.requires_grad for p in teacher.values())
    run(tmp_path / "b", pause_at_step=3)
    again, resumed, temps = run(tmp_path / "b")
    assert resumed.resumed_from_step == 3 and temps == pytest.approx([0.04 + 0.03 * min(1.0, 2 * k / 6)
                                                                      for k in range(3, 6)])
    for (name, a), b in zip(built.objective.state_dict().items(), again.objective.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


# --- installed for real: pip + entry point + CLI ------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """plugins/repbench-example pip-installed into a private folder (no network: no deps, no build isolation).

    pip builds in the source tree (build/, *.egg-info), so it builds a copy and the checkout stays clean.
    """
    base = tmp_path_factory.mktemp("example-site")
    source = base / "src"
    shutil.copytree(PLUGIN_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = base / "site"
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--no-index", "--target", str(target), str(source)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (target / "repbench_example" / "plugin.py").is_file()
    return target


def repbench(site: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    unset = ("REPBENCH_LOAD_PLUGINS", "REPBENCH_DISABLE_PLUGINS")
    full_env = {k: v for k, v in os.environ.items() if k not in unset}
    full_env.update(PYTHONPATH=str(site), HF_HUB_OFFLINE="1", **env)
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=300)


@pytest.mark.slow
def test_installed_plugin_is_discovered_by_its_entry_point(site, tmp_path):
    proc = repbench(site, "plugins", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.strip("| ").startswith("example "))
    assert "repbench-example" in row and "0.1.0" in row
    assert "example/random-conv" in row and "example/shapes" in row
    assert "FAILED" not in proc.stdout

    hidden = repbench(site, "plugins", cwd=tmp_path, REPBENCH_LOAD_PLUGINS="")
    assert hidden.returncode == 0, hidden.stderr
    assert "repbench-example" not in hidden.stdout and "example/" not in hidden.stdout


@pytest.mark.slow
def test_installed_plugin_runs_through_the_cli(site, tmp_path):
    results, cache = tmp_path / "results", tmp_path / "cache"
    proc = repbench(site, "eval", "--encoder", "example/random-conv", "--dataset", "example/shapes",
                    "--protocol", "knn", "--results", str(results), "--cache-dir", str(cache), "--quiet",
                    cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(p.read_text()) for p in results.rglob("*.json")]
    assert len(records) == 1
    record = records[0]
    assert record["status"] == "ok", record.get("error")
    assert record["encoder"]["plugin"] == "example" and record["dataset"]["plugin"] == "example"
    assert record["encoder"]["name"] == "example/random-conv" and record["protocol"]["name"] == "knn"
    assert record["environment"]["plugins"]["example"] == "0.1.0"

    typo = repbench(site, "eval", "--encoder", "example/random-conv", "--dataset", "example/shapez",
                    "--protocol", "knn", "--results", str(results), "--cache-dir", str(cache), "--quiet",
                    cwd=tmp_path)
    assert typo.returncode == 2
    assert "did you mean" in typo.stderr.lower() and "example/shapes" in typo.stderr


@pytest.mark.slow
def test_installed_plugins_method_is_listed_and_trains_through_the_core_loop(site, tmp_path):
    listed = repbench(site, "list", "methods", cwd=tmp_path)
    assert listed.returncode == 0 and "example-siam" in listed.stdout and "hidden=64" in listed.stdout
    runs = tmp_path / "runs"
    proc = repbench(site, "pretrain", "--method", "example-siam[hidden=16]", "--backbone", "example/random-conv",
                    "--dataset", "example/shapes[n_per_class=10]", "--budget", "4steps", "--batch-size", "8",
                    "--out", str(runs), "--eval", "knn", "--results", str(tmp_path / "results"),
                    "--cache-dir", str(tmp_path / "cache"), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [folder] = [p for p in runs.iterdir() if p.is_dir()]
    run = json.loads((folder / "run.json").read_text())
    assert run["status"] == "finished" and run["result"]["steps"] == 4 and run["plugin"] == "example"
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "results").glob("*.json")]
    assert record["status"] == "ok" and record["encoder"]["pretraining"]["method"] == "example-siam[hidden=16]"


# --- the protocol template and the README ------------------------------------------------------------------

@pytest.mark.parametrize("normalize", [False, True])
def test_centroid_protocol_matches_sklearn_nearest_centroid(catalog, normalize):
    from sklearn.neighbors import NearestCentroid

    from benchmark.testing import ArrayTask, blobs, check_protocol

    x_train, y_train = blobs(n_per_class=30, n_classes=4, dim=8, seed=1, spread=3.0)
    x_test, y_test = blobs(n_per_class=10, n_classes=4, dim=8, seed=2, spread=3.0)
    spec = catalog.specs["protocols"]["example/centroid"]
    output = check_protocol(spec, ArrayTask({"train": (x_train, y_train), "test": (x_test, y_test)}),
                            normalize=normalize)
    if normalize:
        x_train, x_test = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (x_train, x_test))
    want = NearestCentroid().fit(x_train, y_train).predict(x_test)
    assert np.array_equal(output.predictions, want) and np.array_equal(output.labels, y_test)
    assert 0.25 < (want == y_test).mean() < 1.0  # a real task, neither trivial nor hopeless


def test_centroid_protocol_runs_in_a_plan_and_checks_its_option(catalog, tmp_path):
    from benchmark.errors import OptionError
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig, run_plan

    with pytest.raises(OptionError, match="option normalize: expected true or false"):
        catalog.resolve("protocols", "example/centroid[normalize=3]")
    plan = make_plan(catalog, ["example/random-conv[width=4]"], ["example/shapes[n_per_class=8]"],
                     ["example/centroid"])
    (record,) = [r.to_json() for r in run_plan(catalog, plan, RunConfig(results_dir=tmp_path, use_cache=False,
                                                                         quiet=True))]
    assert record["status"] == "ok" and 0.0 <= record["metrics"]["top1"] <= 1.0


def test_readme_names_real_modules_and_every_hook():
    from benchmark import hookspecs

    readme = (PLUGIN_DIR / "README.md").read_text()
    for module in set(re.findall(r"`(benchmark(?:\.[a-z_]+)+)", readme)):
        importlib.import_module(module)
    for name in ("benchmark.data.", "`benchmark.data`"):
        assert name not in readme
    hooks = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert hooks and all(h in readme for h in hooks), [h for h in hooks if h not in readme]
