"""Features: extraction (raw samples -> float32 features on the device), the on-disk feature cache, and the checks
of what encoders and datasets hand over (:mod:`benchmark.features.contracts`)."""

from benchmark.features.cache import CacheWarning, FeatureCache, cache_key, save_npz
from benchmark.features.extract import encoder_name, extract, place_encoder, to_device
from benchmark.runtime.devices import best_device

__all__ = ["CacheWarning", "FeatureCache", "best_device", "cache_key", "encoder_name", "extract", "place_encoder",
           "save_npz", "to_device"]
