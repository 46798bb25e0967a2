"""Encoders: the building blocks plugin authors use, and the built-in encoder plugins beside them.

Building blocks (:mod:`benchmark.encoders.base`): :class:`TorchImageEncoder` wraps any backbone with a
per-image transform; :func:`weights_hash`, :func:`config_hash` and :func:`count_params` give the fingerprint
and the record fields; :func:`pil_to_array` turns images into arrays. Built-in plugin modules, each a template
for a third-party one: :mod:`~benchmark.encoders.pixels`, :mod:`~benchmark.encoders.timm`,
:mod:`~benchmark.encoders.text` (``hf/``, MiniLM, WordLlama, TF-IDF).
"""

from benchmark.encoders.base import TorchImageEncoder, config_hash, count_params, pil_to_array, weights_hash

__all__ = ["TorchImageEncoder", "config_hash", "count_params", "pil_to_array", "weights_hash"]
