"""Encoding the fields of a task kind (:class:`~benchmark.specs.FieldDataset`): each field once, in its role.

A field (``queries``, ``corpus``, ``sentence1``) is a list of texts with a role (``query``, ``document`` or none).
A :class:`~benchmark.specs.RoleAware` encoder is asked for its encoder of that role (``for_role``: its own prompt
and fingerprint); any other encoder is symmetric and encodes every field the same way.

The feature-cache key (:func:`field_key`) is made of the encoder's fingerprint, a digest of the field's texts
(not the dataset's name or the field's name), the precision and the role the texts were *really* encoded in:
the field's role for a role-aware encoder, ``none`` for a symmetric one. So, unlike the text-keyed cache of
mteb #5383, a query and a document of the same texts encoded with different prompts never share an entry, and
a symmetric encoder encodes a set of texts once however many fields (or datasets) hold it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.datasets.base import sample_digest
from benchmark.errors import ContractError
from benchmark.features.cache import CACHE_FORMAT
from benchmark.features.contracts import check_features
from benchmark.features.extract import place_encoder
from benchmark.specs import ROLES, Encoder, RoleAware
from benchmark.storage.digest import digest


@dataclass(frozen=True)
class Encoded:
    """How a field was encoded: the role used (``none`` for a symmetric encoder), the role encoder's prompt
    (``info["prompt"]`` when it reports one), its fingerprint and the cache key."""

    field: str
    role: str
    prompt: str | None
    fingerprint: str
    key: str

    def block(self) -> dict[str, Any]:
        return {"role": self.role, "prompt": self.prompt}


def role_encoder(encoder: Encoder, role: str | None, device: str) -> tuple[Encoder, str]:
    """(the encoder to use, the role it encodes in): ``for_role(role)`` of a role-aware encoder, else the encoder
    itself and ``none``."""
    if role is None or not isinstance(encoder, RoleAware):
        return encoder, "none"
    if role not in ROLES:
        raise ContractError(f"field role must be one of {ROLES} or None, got {role!r}")
    return place_encoder(encoder.for_role(role), device), role


def field_key(encoder_fingerprint: str, texts_digest: str, role: str, precision: str) -> str:
    """The cache key of one field's features (see the module: texts, encoder, role, precision)."""
    return digest({"v": CACHE_FORMAT, "enc": encoder_fingerprint, "texts": texts_digest, "role": role,
                   "precision": precision, "kind": "field"}, 24)


def describe(encoder: Encoder, field: str, samples: Sequence[Any], role: str | None, device: str,
             precision: str) -> tuple[Encoder, Encoded]:
    """The encoder for ``field`` and how it will be encoded (role, prompt, cache key)."""
    enc, used = role_encoder(encoder, role, device)
    prompt = enc.info.get("prompt") if isinstance(enc.info, dict) else None
    key = field_key(enc.fingerprint, sample_digest(samples), used, precision)
    return enc, Encoded(field, used, prompt, enc.fingerprint, key)


def checked_field(features: Any, n: int, encoder: str, field: str, embed_dim: int | None) -> np.ndarray:
    """A field's features: finite float32 (n, D)."""
    check_features(features, np.zeros(n, np.int64), encoder, field, embed_dim)
    return features
