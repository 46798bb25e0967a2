"""timm/ pretrained weights fail fast offline (HF_HUB_OFFLINE, or the hub not answering a short probe) with
UnavailableWeights, and go to timm when they are cached or the hub answers. No test touches the network."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from benchmark.encoders import base
from benchmark.encoders import timm as timm_encoders
from benchmark.errors import UnavailableWeights
from benchmark.testing import catalog_with


@pytest.fixture
def create_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every timm.create_model call's kwargs; pretrained ones fail as an unreachable hub would."""
    import timm

    real = timm.create_model
    calls: list[dict[str, Any]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        if kwargs.get("pretrained"):
            raise OSError("We couldn't connect to 'https://huggingface.co'")
        return real(*args, **kwargs)

    monkeypatch.setattr(timm, "create_model", spy)
    return calls


def set_offline(monkeypatch: pytest.MonkeyPatch, offline: bool) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1" if offline else "0")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", offline)


def load(spec: str = "timm/resnet18") -> Any:
    return catalog_with().resolve("encoders", spec).load()


def probe_must_not_run(*args: Any, **kwargs: Any) -> bool:
    raise AssertionError("the network was probed")


def test_hf_hub_offline_fails_at_once_without_calling_timm(monkeypatch, create_calls):
    set_offline(monkeypatch, True)
    monkeypatch.setattr(timm_encoders, "weights_cached", lambda cfg: False)
    monkeypatch.setattr(timm_encoders, "host_reachable", probe_must_not_run)
    with pytest.raises(UnavailableWeights, match="HF_HUB_OFFLINE is set and timm/resnet18.a1_in1k is not in the "
                                                 "local Hugging Face cache") as err:
        load()
    assert "'timm/resnet18[pretrained=false]'" in str(err.value) and "HF_HOME" in str(err.value)
    assert not any(c.get("pretrained") for c in create_calls)


def test_an_unreachable_hub_fails_after_one_short_probe(monkeypatch, create_calls):
    set_offline(monkeypatch, False)
    probed: list[str] = []
    monkeypatch.setattr(timm_encoders, "weights_cached", lambda cfg: False)
    monkeypatch.setattr(timm_encoders, "host_reachable", lambda url: probed.append(url) or False)
    with pytest.raises(UnavailableWeights, match=r"huggingface\.co cannot be reached: no connection within 2 s"):
        load("timm/resnet18.a1_in1k")
    assert probed == ["https://huggingface.co"] and create_calls == []


def test_cached_weights_or_a_reachable_hub_go_to_timm(monkeypatch, create_calls):
    set_offline(monkeypatch, True)
    monkeypatch.setattr(timm_encoders, "weights_cached", lambda cfg: True)
    monkeypatch.setattr(timm_encoders, "host_reachable", probe_must_not_run)
    with pytest.raises(UnavailableWeights, match="OSError: We couldn't connect"):  # timm's own failure, wrapped
        load()
    assert create_calls[-1]["pretrained"] is True
    set_offline(monkeypatch, False)
    monkeypatch.setattr(timm_encoders, "weights_cached", lambda cfg: False)
    monkeypatch.setattr(timm_encoders, "host_reachable", lambda url: True)
    with pytest.raises(UnavailableWeights, match="OSError: We couldn't connect"):
        load()
    assert len([c for c in create_calls if c["pretrained"]]) == 2


def test_random_init_never_probes(monkeypatch):
    set_offline(monkeypatch, False)
    monkeypatch.setattr(timm_encoders, "host_reachable", probe_must_not_run)
    assert load("timm/resnet18[pretrained=false,img_size=32]").info["weights"] == "random-init(seed=0)"


def test_weights_cached_reads_the_hub_cache_and_torch_hub_checkpoints(monkeypatch, tmp_path):
    import torch
    from huggingface_hub import constants
    from timm.models import get_pretrained_cfg

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch"))
    cfg = get_pretrained_cfg("resnet18")
    assert not timm_encoders.weights_cached(cfg)
    snapshot = tmp_path / "hf" / "models--timm--resnet18.a1_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    (snapshot / "model.safetensors").write_bytes(b"weights")
    assert timm_encoders.weights_cached(cfg)
    (snapshot / "model.safetensors").unlink()
    assert not timm_encoders.weights_cached(cfg)
    (tmp_path / "torch" / "checkpoints").mkdir(parents=True)
    (tmp_path / "torch" / "checkpoints" / "resnet18_a1_0-d63eafa0.pth").write_bytes(b"weights")  # cfg.url's file
    assert timm_encoders.weights_cached(cfg)


def test_host_probe_uses_a_short_timeout_and_the_proxy(monkeypatch):
    seen: list[tuple[Any, float]] = []

    def connect(address: Any, timeout: float) -> socket.socket:
        seen.append((address, timeout))
        raise OSError("unreachable")

    monkeypatch.setattr(socket, "create_connection", connect)
    for var in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    assert base.host_reachable("https://huggingface.co") is False
    assert seen[-1] == (("huggingface.co", 443), base.PROBE_TIMEOUT_S) and base.PROBE_TIMEOUT_S <= 3
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert base.host_reachable("https://huggingface.co", timeout=0.5) is False
    assert seen[-1] == (("proxy.internal", 3128), 0.5)


def test_hub_offline_honours_the_variable_and_the_constant(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert base.hub_offline()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert not base.hub_offline()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert base.hub_offline()


def test_unknown_models_and_bad_options_are_repbench_errors():
    from PIL import Image

    from benchmark.encoders.base import pil_to_array
    from benchmark.errors import DataError, OptionError, UnknownNameError

    with pytest.raises(UnknownNameError, match="timm has no model 'resnet1800'.*Close matches"):
        load("timm/resnet1800")
    with pytest.raises(OptionError, match="mode must be auto, L or RGB"):
        load("pixels[mode=CMYK]")
    with pytest.raises(DataError, match="different sizes.*size=N"):
        pil_to_array([Image.new("L", (4, 4)), Image.new("L", (5, 5))], None, "L")
