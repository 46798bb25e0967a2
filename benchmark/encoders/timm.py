"""``timm/<model>``: every timm architecture as an image encoder (pooled features, classifier removed). A plain
plugin module."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import torch

from benchmark.encoders.base import PROBE_TIMEOUT_S, TorchImageEncoder, host_reachable, hub_offline
from benchmark.encoders.timm_layers import create_model
from benchmark.errors import OptionError, UnavailableWeights, UnknownNameError

#: The weight files timm looks for in a hub repository (safetensors first), when the config names none.
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def load_timm(variant: str, pretrained: bool = True, img_size: int | None = None, seed: int = 0,
              layer: int | None = None, patch_size: int | None = None,
              checkpoint: str | None = None) -> TorchImageEncoder:
    """Any timm model as a feature extractor (classifier removed, pooled features).

    ``pretrained=True`` (the default, as users expect) downloads the weights through timm / the Hugging Face hub
    and fails with instructions when that is impossible; it never falls back to random weights silently.
    Weights not in the local cache fail in seconds, before timm's minute of retries, when ``HF_HUB_OFFLINE`` is
    set or the download host does not answer (:func:`check_weights_reachable`): :class:`UnavailableWeights`.
    ``pretrained=False`` gives a seeded random initialisation, itself a standard baseline.
    ``layer=i`` gives the pooled output of the i-th stage or block instead (:mod:`benchmark.encoders.timm_layers`;
    -1 is the default final representation). ``patch_size=p`` builds a ViT with p x p patches (small images:
    ``vit_tiny_patch16_224[img_size=32,patch_size=4]``); other models refuse it (OptionError).
    ``checkpoint=FILE`` loads the user's own weights (a state dict as safetensors or a torch file, read with
    ``weights_only=True``; :mod:`benchmark.encoders.checkpoint_file`) instead of timm's: nothing is downloaded
    and ``pretrained`` does not apply. The file's sha256 is in the record and the fingerprint.
    """
    import timm
    from timm.data import create_transform, resolve_model_data_config

    name = f"timm/{variant}"
    check_timm_name(variant)
    if checkpoint is not None:
        pretrained = False  # the user's weights replace timm's: nothing to download
    elif pretrained:
        check_weights_reachable(variant, name)
    kwargs: dict[str, Any] = {"pretrained": pretrained, "num_classes": 0}
    if patch_size is not None:
        kwargs["patch_size"] = int(patch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = create_model(timm, variant, kwargs, img_size)
        except TypeError as exc:
            if patch_size is None:
                raise
            raise OptionError(f"encoder {name!r}: patch_size applies to vision transformers only ({exc})") from exc
        except Exception as exc:
            if not pretrained:
                raise
            raise unavailable(name, f"{type(exc).__name__}: {exc}") from exc
    loaded = None
    if checkpoint is not None:
        from pathlib import Path

        from benchmark.encoders.checkpoint_file import load_into

        classifier = model.pretrained_cfg.get("classifier") or "fc"
        loaded = load_into(model, Path(checkpoint).expanduser(), f"encoder {name!r}",
                           ignore=[classifier] if isinstance(classifier, str) else list(classifier))
    cfg = resolve_model_data_config(model)
    if img_size is not None:
        cfg["input_size"] = (cfg["input_size"][0], img_size, img_size)
        cfg["crop_pct"] = 1.0
    transform = create_transform(**cfg, is_training=False)
    tag = model.pretrained_cfg.get("hf_hub_id") or model.pretrained_cfg.get("tag") or variant
    weights = f"pretrained:{tag}" if pretrained else f"random-init(seed={seed})"
    if loaded is not None:
        weights = f"checkpoint:{loaded['file']} (sha256 {loaded['sha256'][:16]})"
    pre = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}
    encoder = TorchImageEncoder(model, model.num_features, transform, pre, weights, name, checkpoint=loaded)
    if layer is None:
        return encoder
    from benchmark.encoders.timm_layers import TimmLayerEncoder

    return TimmLayerEncoder(encoder, layer)


def list_timm_models(pattern: str) -> list[str]:
    """``list_variants`` of ``timm/``: timm's architectures matching ``pattern`` (offline: its registry)."""
    import timm

    return list(timm.list_models(pattern or "*"))


def check_timm_name(variant: str) -> None:
    """``check_variant`` of ``timm/``: the architecture must be one timm knows (offline: timm's own registry),
    else UnknownNameError with timm's close matches, when the plan is made."""
    import difflib

    import timm

    arch = variant.split(".")[0]
    if arch.startswith(("hf-hub:", "hf_hub:", "local-dir:")) or timm.is_model(arch):
        return
    close = difflib.get_close_matches(arch, timm.list_models(), n=3, cutoff=0.6)
    close += [m for m in timm.list_models(f"*{arch[:6]}*")[:5] if m not in close]
    hint = f" Close matches: {', '.join(close[:5])}." if close else ""
    raise UnknownNameError(f"encoder 'timm/{variant}': timm has no model {arch!r}.{hint} "
                           "`repbench list encoders 'timm/*name*'` or `timm.list_models()` lists them.")


def unavailable(name: str, cause: str, source: str = "the Hugging Face hub", cache: str = "HF_HOME"
                ) -> UnavailableWeights:
    """The error for pretrained weights of encoder ``name`` that cannot be had, and what to do instead."""
    return UnavailableWeights(
        f"encoder {name!r}: could not load its pretrained weights ({cause}). They come from {source}: connect "
        f"to the internet once (they are cached under {cache}), or evaluate the random initialisation "
        f"explicitly with '{name}[pretrained=false]' (the record will say random-init)."
    )


def check_weights_reachable(variant: str, name: str) -> None:
    """Raise :class:`UnavailableWeights` at once when timm would fail to download ``variant``'s weights.

    Weights already in the local cache (Hugging Face hub cache, or torch hub checkpoints for URL weights), local
    files and variants whose source cannot be told pass (timm decides). Otherwise: hub weights under
    ``HF_HUB_OFFLINE`` fail without any network access; then the download host (the hub endpoint, or the URL's
    host) is probed with a :data:`~benchmark.encoders.base.PROBE_TIMEOUT_S` connect and fails when it does not
    answer.
    """
    cfg = _pretrained_cfg(variant)
    if cfg is None or cfg.file or cfg.state_dict or not (cfg.hf_hub_id or cfg.url) or weights_cached(cfg):
        return
    if cfg.hf_hub_id and _has_hub():  # timm prefers the hub whenever huggingface_hub is installed
        from huggingface_hub import constants

        if hub_offline():
            raise unavailable(name, f"HF_HUB_OFFLINE is set and {cfg.hf_hub_id} is not in the local Hugging Face "
                                    "cache")
        url, source, cache = constants.ENDPOINT, "the Hugging Face hub", "HF_HOME"
    else:
        url, source, cache = cfg.url, urllib.parse.urlsplit(cfg.url).hostname or cfg.url, "TORCH_HOME"
    if not host_reachable(url):
        host = urllib.parse.urlsplit(url).hostname or url
        raise unavailable(name, f"{host} cannot be reached: no connection within {PROBE_TIMEOUT_S:g} s", source,
                          cache)


def weights_cached(cfg: Any) -> bool:
    """Whether the weights a timm pretrained config names are already on disk (hub cache or torch hub)."""
    if cfg.hf_hub_id and _has_hub():
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else list(HUB_WEIGHT_FILES)
        if any(isinstance(try_to_load_from_cache(repo, f, revision=revision or None), str) for f in files):
            return True
    if cfg.url:
        file = os.path.basename(urllib.parse.urlsplit(cfg.url).path)
        return os.path.isfile(os.path.join(torch.hub.get_dir(), "checkpoints", file))
    return False


def _pretrained_cfg(variant: str) -> Any | None:
    """timm's pretrained config of ``variant`` (``arch`` or ``arch.tag``), None when it has none."""
    from timm.models import get_pretrained_cfg

    try:
        return get_pretrained_cfg(variant)
    except Exception:  # an unknown tag: timm.create_model gives the real error
        return None


def _has_hub() -> bool:
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        return False
    return True
