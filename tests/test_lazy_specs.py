"""Light registration (benchmark.specs.lazy): a spec names its code as "module:function", imported on first use;
its options are read from the function's source. Every built-in spec's lazy callables resolve, and the options
read from source equal those of the imported signature."""

from __future__ import annotations

import pickle
import sys
import textwrap

import pytest

from benchmark.options import defaults_of
from benchmark.specs import EncoderSpec
from benchmark.specs.lazy import Lazy
from benchmark.testing import catalog_with

FIELDS = ("load", "evaluate", "build", "validate", "count_layers", "weights_id", "name_of", "check_variant",
          "list_variants")
MAIN = {"load", "evaluate", "build"}


def _lazies():
    catalog = catalog_with()
    for kind, specs in catalog.specs.items():
        for name, spec in specs.items():
            for field in FIELDS:
                value = getattr(spec, field, None)
                if isinstance(value, Lazy):
                    yield pytest.param(spec, field, value, id=f"{kind}:{name}:{field}")


LAZIES = list(_lazies())


def test_the_torch_importing_builtins_register_lazily():
    named = {(p.values[0].name, p.values[1]) for p in LAZIES}
    assert {("timm/", "load"), ("knn", "evaluate"), ("finetune", "evaluate"), ("simclr", "build"),
            ("run:", "load"), ("hf/", "count_layers")} <= named


@pytest.mark.parametrize(("spec", "field", "lazy"), LAZIES)
def test_every_lazy_target_resolves_and_its_source_defaults_are_the_signature(spec, field, lazy):
    fn = lazy.resolve()
    assert callable(fn) and not isinstance(fn, Lazy)
    if field in MAIN:
        real = defaults_of(fn)
        assert lazy.static_defaults() == real
        if spec.name not in ("finetune",):  # finetune takes **options: its defaults are FinetuneConfig's
            assert dict(spec.defaults) == {k: real[k] for k in spec.defaults}


def _module(tmp_path, monkeypatch, body: str, name: str = "heavy_fake_plugin") -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop(name, None)
    return name


def test_defaults_are_read_without_importing_and_the_first_call_imports(tmp_path, monkeypatch):
    _module(tmp_path, monkeypatch, "SEP = '/'\n", "fake_plugin_constants")
    name = _module(tmp_path, monkeypatch, """
        from fake_plugin_constants import SEP as SEP_ALIAS
        SIZE = 32
        NAMES = ("a", "b")
        print("imported!")

        class Enc:
            def __init__(self, size: int = SIZE, names=NAMES, sep=SEP_ALIAS, *, flag: bool = False) -> None:
                self.size = size

        def load(variant, size=SIZE, names=NAMES, sep=SEP_ALIAS, *, flag: bool = False, **rest):
            return Enc(size)
    """)
    spec = EncoderSpec("fake/", "image", load=Lazy(f"{name}:load"))
    assert name not in sys.modules
    assert spec.defaults == {"size": 32, "names": ["a", "b"], "sep": "/", "flag": False}
    assert Lazy(f"{name}:Enc").static_defaults() == spec.defaults
    assert name not in sys.modules
    assert spec.load("v", size=8).size == 8 and name in sys.modules


def test_a_default_source_cannot_tell_imports_the_module(tmp_path, monkeypatch):
    name = _module(tmp_path, monkeypatch, """
        import math

        def load(size=int(math.sqrt(16))):
            return size
    """, "computed_default_plugin")
    assert Lazy(f"{name}:load").static_defaults() == {"size": 4} and name in sys.modules


def test_lazy_pickles_compares_by_target_and_refuses_a_malformed_target():
    lazy = Lazy("benchmark.options:defaults_of")
    assert pickle.loads(pickle.dumps(lazy)) == lazy and hash(lazy) == hash(Lazy("benchmark.options:defaults_of"))
    assert lazy(lambda a, b=1: None) == {"b": 1}
    for bad in ("benchmark.options", "benchmark.options:", ":f", "m:not-a-name"):
        with pytest.raises(ValueError, match="package.module:function"):
            Lazy(bad)
    with pytest.raises(AttributeError):
        Lazy("benchmark.options:no_such_function")()
