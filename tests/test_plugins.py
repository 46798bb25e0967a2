"""The plugin system: discovery by entry point, load order, isolation of broken plugins, validation."""

from __future__ import annotations

import types

import pytest

import benchmark
from benchmark import hookimpl, hookspecs
from benchmark.catalog import Catalog, UnknownNameError
from benchmark.plugins import ALLOW_ENV, BUILTIN_PLUGINS, DENY_ENV, make_plugin_manager
from benchmark.specs import DatasetSpec, EncoderSpec, MethodSpec, ProtocolOutput, ProtocolSpec
from benchmark.testing import catalog_with


class FakeDist:
    def __init__(self, name: str, version: str) -> None:
        self.metadata = {"Name": name}
        self.version = version


class FakeEntryPoint:
    """What importlib.metadata gives for `[project.entry-points.repbench] name = "value"`, without installing."""

    group = "repbench"

    def __init__(self, name: str, target: object | Exception, dist: str = "fake-dist", version: str = "1.2.3"):
        self.name = name
        self.value = f"{dist.replace('-', '_')}.plugin"
        self.dist = FakeDist(dist, version)
        self._target = target

    def load(self) -> object:
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


def _encoder(name: str, modality: str = "image") -> EncoderSpec:
    return EncoderSpec(name, modality, load=lambda **o: None)


def plugin_module(name: str, **hooks: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def test_entry_point_plugins_load_first_then_builtins_by_the_same_register():
    third = plugin_module("third", register_encoders=lambda: [_encoder("third/enc")])
    pset = make_plugin_manager(entry_points=[FakeEntryPoint("third", third)])
    names = list(pset.infos)
    assert names[0] == "third"
    # every built-in loads (a broken one would be missing here and reported in pset.errors), in map order
    assert not pset.errors, [e.message() for e in pset.errors]
    assert names[1:] == list(BUILTIN_PLUGINS)
    assert all(pset.infos[n].builtin for n in names[1:])
    assert pset.infos["third"].distribution == "fake-dist" and pset.infos["third"].version == "1.2.3"
    catalog = Catalog.load(pset)
    assert catalog.plugin_of("encoders", catalog.specs["encoders"]["third/enc"]) == "third"
    assert catalog.plugin_of("encoders", catalog.specs["encoders"]["pixels"]) == "builtin:pixels"


def test_broken_plugin_import_is_reported_and_the_others_still_load():
    good = plugin_module("good", register_encoders=lambda: [_encoder("good/enc")])
    cause = ImportError("No module named 'missing_dependency'")
    pset = make_plugin_manager(entry_points=[FakeEntryPoint("broken", cause, dist="broken-dist", version="0.9"),
                                             FakeEntryPoint("good", good)])
    catalog = Catalog.load(pset)
    assert "good/enc" in catalog.specs["encoders"] and "pixels" in catalog.specs["encoders"]
    [err] = pset.errors
    assert err.plugin == "broken" and err.distribution == "broken-dist" and err.version == "0.9"
    assert err.error is cause  # the original exception (and its traceback) is kept
    msg = err.message()
    assert '"broken"' in msg and "broken-dist 0.9" in msg and "missing_dependency" in msg
    assert DENY_ENV in msg and ALLOW_ENV in msg


def test_hook_that_raises_or_returns_garbage_is_isolated_per_plugin():
    def boom():
        raise RuntimeError("weights server down")

    raising = plugin_module("raising", register_encoders=boom, register_datasets=lambda: [
        DatasetSpec("raising/data", "image", load=lambda **o: None)])
    garbage = plugin_module("garbage", register_encoders=lambda: ["not a spec", _encoder("garbage/ok")])
    notalist = plugin_module("notalist", register_protocols=lambda: ProtocolSpec("x", evaluate=lambda t: None))
    catalog = catalog_with(("raising", raising), ("garbage", garbage), ("notalist", notalist))
    by_plugin = {e.plugin: e for e in catalog.errors}
    assert set(by_plugin) == {"raising", "garbage", "notalist"}
    assert by_plugin["raising"].stage == "register_encoders"
    assert "weights server down" in by_plugin["raising"].message()
    assert "not a spec" in str(by_plugin["garbage"].error)
    assert "must return a list" in str(by_plugin["notalist"].error)
    # the parts that were fine are kept
    assert "raising/data" in catalog.specs["datasets"] and "garbage/ok" in catalog.specs["encoders"]


def test_duplicate_names_are_errors_blamed_on_the_newcomer_not_silent_overrides():
    clash = plugin_module("clash", register_encoders=lambda: [_encoder("pixels"), _encoder("clash/own")])
    catalog = catalog_with(("clash", clash))
    assert catalog.plugin_of("encoders", catalog.specs["encoders"]["pixels"]) == "builtin:pixels"
    [err] = catalog.errors
    assert err.plugin == "clash" and "already registered by plugin 'builtin:pixels'" in str(err.error)
    assert "clash/own" in catalog.specs["encoders"]


def test_misspelt_hook_fails_loudly_for_that_plugin_only():
    typo = plugin_module("typo", register_encoder=lambda: [_encoder("typo/enc")])
    fine = plugin_module("fine", register_encoders=lambda: [_encoder("fine/enc")])
    catalog = catalog_with(("typo", typo), ("fine", fine))
    [err] = catalog.errors
    assert err.plugin == "typo" and err.stage == "validation"
    assert "register_encoder" in str(err.error) and "register_encoders" in str(err.error)
    assert "fine/enc" in catalog.specs["encoders"] and "typo" not in catalog.plugins.infos


def test_allowlist_and_denylist(monkeypatch):
    a = plugin_module("a", register_encoders=lambda: [_encoder("a/enc")])
    b = plugin_module("b", register_encoders=lambda: [_encoder("b/enc")])
    eps = [FakeEntryPoint("a", a, dist="a-dist"), FakeEntryPoint("b", b, dist="b-dist")]
    monkeypatch.setenv(ALLOW_ENV, "b")
    assert "a" not in make_plugin_manager(entry_points=eps).infos
    monkeypatch.setenv(ALLOW_ENV, "")
    assert not {"a", "b"} & set(make_plugin_manager(entry_points=eps).infos)
    monkeypatch.delenv(ALLOW_ENV)
    monkeypatch.setenv(DENY_ENV, "a,builtin:vision-datasets")
    infos = make_plugin_manager(entry_points=eps).infos
    assert "a" not in infos and "b" in infos and "builtin:vision-datasets" not in infos


def test_malformed_specs_are_rejected_at_construction():
    with pytest.raises(ValueError, match="malformed"):
        EncoderSpec("has space", "image", load=lambda: None)
    with pytest.raises(ValueError, match="modality"):
        DatasetSpec("d", "audio", load=lambda: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="callable"):
        ProtocolSpec("p", evaluate=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="families"):
        MethodSpec("m/", build=lambda *a, **k: None)


def test_malformed_spec_raised_inside_a_hook_is_reported_with_the_plugin():
    bad = plugin_module("bad", register_datasets=lambda: [DatasetSpec("a b", "image", load=lambda: None)])
    catalog = catalog_with(("bad", bad))
    [err] = catalog.errors
    assert err.plugin == "bad" and "malformed" in str(err.error)


def test_unknown_names_suggest_close_matches_and_the_listing_command():
    catalog = catalog_with()
    with pytest.raises(UnknownNameError) as info:
        catalog.resolve("encoders", "pixel")
    assert "'pixels'" in str(info.value) and "repbench list encoders" in str(info.value)
    with pytest.raises(UnknownNameError, match="timm/<name>"):
        catalog.resolve("encoders", "timm")


def test_families_serve_every_name_under_their_prefix():
    catalog = catalog_with()
    resolved = catalog.resolve("encoders", "timm/resnet18[pretrained=false]")
    assert resolved.spec.name == "timm/" and resolved.variant == "resnet18"
    assert resolved.options["pretrained"] is False
    assert resolved.label == "timm/resnet18[pretrained=false]"


# --- every hook has a contract, an example and a test (datasette's rule) -----------------------------------
HOOKS = sorted(n for n in dir(hookspecs) if n.startswith("register_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_an_example(hook):
    doc = getattr(hookspecs, hook).__doc__ or ""
    assert "Example::" in doc and "@hookimpl" in doc


def test_every_hook_has_a_test_named_after_it():
    names = set(globals())
    missing = [h for h in HOOKS if f"test_hook_{h}" not in names]
    assert not missing, f"hooks without a test_hook_<name> test: {missing}"


def test_hook_register_encoders():
    spec = _encoder("t/enc")
    catalog = catalog_with(("t", plugin_module("t", register_encoders=lambda: [spec])), builtins=False)
    assert catalog.specs["encoders"] == {"t/enc": spec}


def test_hook_register_datasets():
    spec = DatasetSpec("t/data", "text", load=lambda **o: None)
    catalog = catalog_with(("t", plugin_module("t", register_datasets=lambda: [spec])), builtins=False)
    assert catalog.specs["datasets"] == {"t/data": spec}


def test_hook_register_protocols():
    spec = ProtocolSpec("t-proto", evaluate=lambda task: ProtocolOutput(), primary_metric="f1")
    catalog = catalog_with(("t", plugin_module("t", register_protocols=lambda: [spec])), builtins=False)
    assert catalog.resolve("protocols", "t-proto").spec.primary_metric == "f1"


def test_hook_register_methods():
    """The method contract with a fake plugin: build(backbone, **options) -> Method (views, objective, recipe)."""
    import torch

    class Tiny:
        def __init__(self, backbone, lr):
            self.objective = torch.nn.Linear(2, 1)
            self.momentum_pairs = ()
            self.defaults = benchmark.TrainDefaults(lr=lr)

        def views(self, sample):
            return [torch.zeros(2), torch.ones(2)]

    def build(backbone: benchmark.Backbone, lr: float = 0.1) -> Tiny:
        return Tiny(backbone, lr)

    method = MethodSpec("tiny", build=build)
    catalog = catalog_with(("m", plugin_module("m", register_methods=lambda: [method])))
    resolved = catalog.resolve("methods", "tiny[lr=0.5]")
    assert resolved.spec.defaults == {"lr": 0.1} and resolved.options == {"lr": 0.5}
    built = resolved.spec.build(None, **resolved.options)
    assert isinstance(built, benchmark.Method) and built.defaults.lr == 0.5
    assert catalog.plugin_of("methods", resolved.spec) == "m"


def test_catalog_add_registers_a_spec_with_the_hook_checks():
    catalog = catalog_with(builtins=False)
    spec = _encoder("trained/run1")
    catalog.add("encoders", spec, plugin="trainer")
    assert catalog.resolve("encoders", "trained/run1").spec is spec
    assert catalog.plugin_of("encoders", spec) == "trainer"
    with pytest.raises(ValueError, match="already registered by plugin 'trainer'"):
        catalog.add("encoders", _encoder("trained/run1"), plugin="other")
    with pytest.raises(TypeError, match="is not a DatasetSpec"):
        catalog.add("datasets", spec, plugin="trainer")


def test_hook_register_suites():
    """A third-party suite: registered, listed with its plugin, resolved to the labels records carry."""
    from benchmark.leaderboards.suites import resolve_suite
    from benchmark.specs import SuiteSpec

    suite = SuiteSpec("t-digits-v2", datasets=("digits[test_fraction=0.5]",), protocols=("knn", "linear"),
                      aggregation="mean", description="test suite")
    catalog = catalog_with(("t", plugin_module("t", register_suites=lambda: [suite])))
    assert catalog.specs["suites"]["t-digits-v2"] is suite and catalog.plugin_of("suites", suite) == "t"
    resolved = resolve_suite(catalog, "t-digits-v2")
    assert resolved.tag() == {"name": "t-digits-v2", "version": 2}
    assert resolved.cells == (("image", "digits[test_fraction=0.5]", "knn"),
                              ("image", "digits[test_fraction=0.5]", "linear"))


def test_dataset_families_over_other_datasets_are_ordinary_builtin_plugins(monkeypatch):
    catalog = Catalog.load(make_plugin_manager(entry_points=[]))
    assert catalog.registered_by("builtin:shift-datasets") == {"datasets": ["shift:"]}
    assert catalog.registered_by("builtin:corrupt-datasets") == {"datasets": ["corrupt:"]}
    monkeypatch.setenv(DENY_ENV, "builtin:shift-datasets")
    catalog = Catalog.load(make_plugin_manager(entry_points=[]))
    assert "shift:" not in catalog.names("datasets") and "corrupt:" in catalog.names("datasets")
