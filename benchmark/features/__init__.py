"""Features: extraction (raw samples -> float32 features on the device) and the on-disk feature cache."""

from benchmark.features.cache import FeatureCache, cache_key, save_npz
from benchmark.features.extract import best_device, extract, place_encoder, to_device

__all__ = ["FeatureCache", "best_device", "cache_key", "extract", "place_encoder", "save_npz", "to_device"]
