"""The Hugging Face text encoder building block: :class:`HFTextEncoder` (pooled token states of any
``transformers`` encoder) and the loading helpers its plugins share (:mod:`benchmark.encoders.text`,
:mod:`benchmark.encoders.text_layers`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from benchmark.encoders.base import config_hash, count_params, weights_hash
from benchmark.errors import MissingDependency, OptionError
from benchmark.storage.digest import digest

#: Longest input any hf/ encoder is given, whatever the model allows (quadratic attention cost).
MAX_LENGTH_CAP = 512
POOLINGS = ("mean", "cls")
TEXT_EXTRA_HINT = "pip install 'repbench[text]'"


def import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependency(f"text encoders need the transformers package: {TEXT_EXTRA_HINT}") from exc
    return transformers


class HFTextEncoder(torch.nn.Module):
    """A transformers encoder as a sentence encoder: pooled last hidden states, optionally L2-normalised.

    ``weights`` says which weights were used (goes into records); ``max_length`` is the truncation length in
    tokens. ``preprocess`` returns a dict of int64 tensors (input_ids, attention_mask, maybe token_type_ids).
    """

    modality = "text"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, name: str, weights: str, pooling: str = "mean",
                 normalize: bool = True, max_length: int = MAX_LENGTH_CAP) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise OptionError(f"encoder {name!r}: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.weights = weights
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.max_length = int(max_length)
        self.embed_dim = int(model.config.hidden_size)  # type: ignore[union-attr,arg-type]
        self.checkpoint: dict[str, Any] | None = None  # the user's checkpoint= file (name, sha256), if any

    def sort_key(self, text: str) -> int:
        """Length in characters: cheap, and close enough to token count to group similar lengths."""
        return len(text)

    def preprocess(self, samples: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(samples), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def count_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Real (non-padding) tokens in a preprocessed batch: what tokens/s throughput counts."""
        return int(batch["attention_mask"].sum())

    def example_batch(self, batch_size: int, *, seq_len: int | None = None, device: str = "cpu"
                      ) -> dict[str, torch.Tensor]:
        """Random token ids (batch_size, seq_len) with a full attention mask (and zero token types when the
        model has them) on ``device``, as ``preprocess`` would return them (:class:`~benchmark.specs.ExampleBatch`).
        ``seq_len`` defaults to min(128, max_length) and may not exceed ``max_length``."""
        n = min(128, self.max_length) if seq_len is None else int(seq_len)
        if not 1 <= n <= self.max_length:
            raise OptionError(f"encoder {self.name!r}: seq_len must be between 1 and its max_length "
                              f"{self.max_length}, got {seq_len}")
        vocab = min(len(self.tokenizer), int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer)))
        ids = torch.randint(0, vocab, (batch_size, n), device=device)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if int(getattr(self.model.config, "type_vocab_size", 0) or 0) > 0:
            batch["token_type_ids"] = torch.zeros_like(ids)
        return batch

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.pool(self.hidden(batch), batch)

    def hidden(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The token states that are pooled: the last hidden states (B, L, H)."""
        return self.model(**batch).last_hidden_state

    def pool(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, L, H) token states -> (B, H) features: CLS or the mean over real tokens, then maybe L2-normalised."""
        if self.pooling == "cls":
            out = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out = out.float()
        return torch.nn.functional.normalize(out, dim=-1) if self.normalize else out

    @functools.cached_property
    def weights_hash(self) -> str:
        """Computed once, as for TorchImageEncoder: the harness never changes an encoder after loading it."""
        return weights_hash(self.model)

    @property
    def preprocess_config(self) -> dict[str, Any]:
        return {"tokenizer": type(self.tokenizer).__name__, "vocab_size": len(self.tokenizer),
                "max_length": self.max_length, "pooling": self.pooling, "normalize": self.normalize,
                "lowercase": bool(getattr(self.tokenizer, "do_lower_case", False))}

    @property
    def info(self) -> dict[str, Any]:
        out = {"weights": self.weights, "weights_hash": self.weights_hash, "params": count_params(self.model),
               "embed_dim": self.embed_dim, "preprocess": self.preprocess_config}
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        return out

    @property
    def fingerprint(self) -> str:
        vocab = digest(sorted(self.tokenizer.get_vocab().items()))
        ident: dict[str, Any] = {"name": self.name, "weights": self.weights_hash, "pre": self.preprocess_config,
                                 "vocab": vocab}
        if self.checkpoint is not None:  # unchanged for encoders without one (their caches stay valid)
            ident["checkpoint"] = self.checkpoint.get("sha256")
        return config_hash(ident)


def _sentence_transformers_max_length(folder: Path) -> int | None:
    """``max_seq_length`` of a sentence-transformers folder (its ``sentence_bert_config.json``), if any."""
    cfg = folder / "sentence_bert_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text()).get("max_seq_length")
        return int(value) if value else None
    return None


def resolve_max_length(model: Any, tokenizer: Any, folder: Path | None, max_length: int | None) -> int:
    if max_length is not None:
        if max_length < 1:
            raise OptionError(f"max_length must be a positive number of tokens, got {max_length}")
        return min(int(max_length), MAX_LENGTH_CAP)
    limits = [MAX_LENGTH_CAP]
    if folder is not None and (st := _sentence_transformers_max_length(folder)):
        limits.append(st)
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 10**6:  # transformers uses a huge int for "unset"
        limits.append(tok_limit)
    pos = getattr(model.config, "max_position_embeddings", None)
    if isinstance(pos, int) and pos > 0:
        limits.append(pos)
    return min(limits)


def from_pretrained_safe(cls: Any, source: str, *, local: bool, revision: str | None, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` preferring safetensors; .bin checkpoints load only through transformers'
    ``torch.load(weights_only=True)`` path (no pickled code runs)."""
    common = {"local_files_only": local, **({"revision": revision} if revision and not local else {})}
    try:
        return cls.from_pretrained(source, use_safetensors=True, **common, **kwargs)
    except (OSError, ValueError) as exc:
        if "safetensors" not in str(exc).lower():
            raise
        return cls.from_pretrained(source, use_safetensors=False, **common, **kwargs)
