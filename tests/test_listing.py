"""`repbench list [KIND] [PATTERN]`: singular kinds, every kind at once, fnmatch patterns with families listing
their variants (timm's registry, offline), an "available" column, and tables within 120 columns."""

from __future__ import annotations

import pytest
import timm

from benchmark import EncoderSpec, hookimpl
from benchmark.api.listing import render
from benchmark.cli import main
from benchmark.errors import OptionError
from benchmark.testing import catalog_with


def _names(text: str) -> set[str]:
    return {line.split()[0] for line in text.splitlines()[4:] if line and not line.startswith(" ")}


def test_a_pattern_lists_timm_models_like_timm_list_models(capsys):
    assert main(["list", "encoder", "timm/*resnet1*"]) == 0
    out = capsys.readouterr().out
    assert _names(out) == {f"timm/{m}" for m in timm.list_models("*resnet1*")}
    assert "timm/resnet18" in _names(out) and "pixels" not in out


def test_a_pattern_over_plain_names():
    text = render(catalog_with(), "datasets", "*mnist*")
    assert _names(text) == {"mnist5k", "fashion-mnist", "mnist"} & _names(render(catalog_with(), "datasets", None))


def test_list_without_a_kind_shows_every_kind_within_120_columns(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for kind in ("encoders", "datasets", "protocols", "methods", "suites"):
        assert f"\n{kind}\n" in f"\n{out}"
    assert max(len(line) for line in out.splitlines()) <= 120


def test_available_names_the_missing_package():
    mod = type("m", (), {})()

    @hookimpl
    def register_encoders():
        return [EncoderSpec("needs/thing", "image", load=lambda: None, requires=("no_such_module_xyz",))]

    mod.register_encoders = register_encoders
    text = render(catalog_with(("needs", mod)), "encoder", "needs/*")
    row = next(line for line in text.splitlines() if line.startswith("needs/thing"))
    assert "no:" in row and "no-such-module-xyz" in text.replace("\n", " ").replace(" ", "")
    assert "yes" in next(line for line in render(catalog_with(), "encoders", "pixels").splitlines()
                         if line.startswith("pixels"))


def test_an_unknown_kind_is_one_line(capsys):
    assert main(["list", "encodrs"]) == 2
    assert "unknown kind; use one of encoders, datasets" in capsys.readouterr().err
    with pytest.raises(OptionError):
        render(catalog_with(), "encodrs", None)
