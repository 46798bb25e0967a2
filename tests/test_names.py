"""Spec strings and option coercion."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from benchmark.options import Requested, SpecStringError, coerce_options, parse, parse_list, split_list


def test_split_list_keeps_bracketed_commas():
    assert split_list("pixels, timm/resnet18[pretrained=false,img_size=64] ,knn") == [
        "pixels", "timm/resnet18[pretrained=false,img_size=64]", "knn"]


def test_parse_with_and_without_options():
    assert parse("digits") == Requested("digits")
    req = parse("timm/resnet18[pretrained=false, img_size=64]")
    assert req.name == "timm/resnet18" and dict(req.options) == {"pretrained": "false", "img_size": "64"}
    assert parse_list(["a,b", "c[x=1]"]) == [Requested("a"), Requested("b"), Requested("c", {"x": "1"})]


@pytest.mark.parametrize("bad", ["a[x=1", "a]", "a[x]", "[x=1]", "a[x=1]b", "a[x=1,x=2]"])
def test_malformed_strings_raise_clear_errors(bad):
    with pytest.raises(SpecStringError):
        parse_list(bad)


def test_coercion_follows_the_declared_defaults():
    defaults = {"k": 20, "T": 0.07, "uniform": False, "mode": "auto", "size": None, "ks": [10, 20]}
    out = coerce_options("protocol 'knn'", {"k": "5", "T": "0.1", "uniform": "yes", "size": "32", "ks": "1+2+3"},
                         defaults)
    assert out == {"k": 5, "T": 0.1, "uniform": True, "mode": "auto", "size": 32, "ks": [1, 2, 3]}
    assert coerce_options("x", {}, defaults) == defaults


def test_unknown_or_mistyped_options_name_the_spec_and_list_valid_ones():
    with pytest.raises(SpecStringError, match=r"protocol 'knn'.*unknown option.*kk.*valid options.*k=20"):
        coerce_options("protocol 'knn'", {"kk": "3"}, {"k": 20})
    with pytest.raises(SpecStringError, match="expected an integer"):
        coerce_options("protocol 'knn'", {"k": "many"}, {"k": 20})
    with pytest.raises(SpecStringError, match="true or false"):
        coerce_options("e", {"pretrained": "maybe"}, {"pretrained": True})


def test_options_are_coerced_by_annotation_not_guessed():
    from benchmark.options import option_hints

    def load(size: int | None = None, name: str | None = None, ratios: Sequence[float] = (0.5,),
             k: int | Sequence[int] = 20, flag: bool = False):
        return None

    hints = option_hints(load)
    defaults = {"size": None, "name": None, "ratios": [0.5], "k": 20, "flag": False}
    out = coerce_options("encoder 'x'", {"size": "32", "name": "123", "ratios": "1+2", "k": "5+6", "flag": "no"},
                         defaults, hints)
    assert out == {"size": 32, "name": "123", "ratios": [1.0, 2.0], "k": [5, 6], "flag": False}
    assert coerce_options("encoder 'x'", {"size": "none", "k": "7"}, defaults, hints)["k"] == 7
    with pytest.raises(SpecStringError, match=r"encoder 'x' option size: expected an integer, got 'abc'"):
        coerce_options("encoder 'x'", {"size": "abc"}, defaults, hints)  # a guess would have kept the string
    with pytest.raises(SpecStringError, match="expected a number"):
        coerce_options("encoder 'x'", {"ratios": "1+x"}, defaults, hints)


def test_a_class_loader_gives_its_init_signature_as_options():
    from benchmark.encoders.pixels import PixelsEncoder
    from benchmark.options import option_hints
    from benchmark.specs import EncoderSpec

    spec = EncoderSpec("p", "image", load=PixelsEncoder)
    assert spec.defaults == {"size": None, "mode": "auto"}
    assert coerce_options("encoder 'p'", {"size": "8"}, spec.defaults, option_hints(PixelsEncoder))["size"] == 8
