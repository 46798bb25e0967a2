"""Query / document prompts for text encoders: the :class:`~benchmark.specs.RoleAware` capability.

``hf/<model>[query_prompt=query:,document_prompt=passage:]`` (and ``text/all-MiniLM-L6-v2``, ``text/wordllama``)
wrap the loaded encoder in :class:`Prompted`: the fields of a task kind that have a role (a retrieval task's
``queries`` and ``corpus``) are encoded by ``for_role(role)``, which puts that role's prompt before every text,
as sentence-transformers' ``prompts`` and E5's "query: " / "passage: " prefixes do. The prompt and the text are
joined by one space unless the prompt already ends in whitespace (the spec-string parser strips trailing
spaces, so ``query_prompt=query:`` gives E5's ``"query: "``). Fields without a role (STS pairs) and the
splits of classification datasets are encoded without a prompt.

Each role's encoder has its own ``fingerprint`` (the inner encoder's plus the prompt) and reports its ``prompt``
in ``info``; the feature cache keys on the role too (:mod:`benchmark.features.fields`). Without a prompt option
the encoder is returned unwrapped: symmetric, with its fingerprint and cache entries unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from benchmark.encoders.base import config_hash
from benchmark.errors import OptionError
from benchmark.specs import ROLES, Encoder

#: The options that make an encoder role-aware (None: no prompt for that role).
ROLE_OPTIONS: tuple[str, ...] = ("query_prompt", "document_prompt")


def join(prompt: str, text: str) -> str:
    """``prompt`` before ``text``, with one space between unless the prompt ends in whitespace."""
    if not prompt:
        return text
    return prompt + text if prompt[-1].isspace() else f"{prompt} {text}"


class Prompted(torch.nn.Module):
    """A text encoder with a prompt per role; ``role=None`` (as loaded) encodes without a prompt."""

    def __init__(self, inner: Encoder, query_prompt: str | None = None, document_prompt: str | None = None,
                 role: str | None = None) -> None:
        super().__init__()
        for name, value in (("query_prompt", query_prompt), ("document_prompt", document_prompt)):
            if value is not None and not isinstance(value, str):
                raise OptionError(f"encoder option {name} must be a string, got {value!r}")
        self.inner = inner
        self.query_prompt, self.document_prompt, self.role = query_prompt, document_prompt, role
        self.modality = inner.modality
        if isinstance(inner, torch.nn.Module):  # registered as a submodule: .to(device) moves it
            self.add_module("inner", inner)

    @property
    def prompt(self) -> str:
        return {"query": self.query_prompt, "document": self.document_prompt}.get(self.role or "") or ""

    def for_role(self, role: str) -> Prompted:
        if role not in ROLES:
            raise OptionError(f"role must be one of {ROLES}, got {role!r}")
        return prompted(self.inner, self.query_prompt, self.document_prompt, role)

    @property
    def embed_dim(self) -> int | None:
        return self.inner.embed_dim

    @property
    def info(self) -> dict[str, Any]:
        return {**self.inner.info, "query_prompt": self.query_prompt, "document_prompt": self.document_prompt,
                "role": self.role, "prompt": self.prompt or None}

    @property
    def fingerprint(self) -> str:
        return config_hash({"inner": self.inner.fingerprint, "prompt": self.prompt})

    def sort_key(self, text: str) -> int:
        return len(join(self.prompt, text))

    def preprocess(self, samples: Sequence[Any]) -> Any:
        return self.inner.preprocess([join(self.prompt, s) for s in samples])

    def encode(self, batch: Any) -> Any:
        return self.inner.encode(batch)

    def count_tokens(self, batch: Any) -> int:
        count = getattr(self.inner, "count_tokens", None)
        return int(count(batch)) if callable(count) else 0


class TimedPrompted(Prompted):
    """A :class:`Prompted` encoder whose inner encoder has ``example_batch`` (:class:`~benchmark.specs.ExampleBatch`,
    for ``repbench throughput``): a prompt only changes the text ``preprocess`` tokenizes, and a synthetic batch is
    already tokenized, so it is timed on the inner encoder's batches (at the ``seq_len`` asked)."""

    def example_batch(self, batch_size: int, *, seq_len: int | None = None, device: str = "cpu") -> Any:
        return self.inner.example_batch(batch_size, seq_len=seq_len, device=device)  # type: ignore[attr-defined]


def prompted(inner: Encoder, query_prompt: str | None, document_prompt: str | None, role: str | None = None
             ) -> Prompted:
    """A :class:`Prompted` wrapper of ``inner``; a :class:`TimedPrompted` when ``inner`` can build a synthetic
    batch (so the wrapper is an ExampleBatch exactly when the inner encoder is)."""
    cls = TimedPrompted if callable(getattr(inner, "example_batch", None)) else Prompted
    return cls(inner, query_prompt, document_prompt, role)


def with_prompts(encoder: Encoder, query_prompt: str | None, document_prompt: str | None) -> Encoder:
    """``encoder`` wrapped in :class:`Prompted` when a prompt is given, else unchanged."""
    if query_prompt is None and document_prompt is None:
        return encoder
    return prompted(encoder, query_prompt, document_prompt)
