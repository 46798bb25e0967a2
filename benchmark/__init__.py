"""repbench: how good and how fast is this encoder, or this pretraining method?

The public API for plugin authors: ``hookimpl``, the spec dataclasses and the protocols they build.
"""

from benchmark.hookspecs import hookimpl
from benchmark.specs import (
    Backbone,
    Budget,
    BuiltMethod,
    Dataset,
    DatasetSpec,
    Encoder,
    EncoderSpec,
    EvalTask,
    Method,
    MethodSpec,
    ProtocolOutput,
    ProtocolSpec,
    Split,
    SuiteSpec,
    TrainDefaults,
)
from benchmark.specs.lazy import Lazy

__version__ = "0.1.0"

__all__ = [
    "Backbone",
    "Budget",
    "BuiltMethod",
    "Dataset",
    "DatasetSpec",
    "Encoder",
    "EncoderSpec",
    "EvalTask",
    "Lazy",
    "Method",
    "MethodSpec",
    "ProtocolOutput",
    "ProtocolSpec",
    "Split",
    "SuiteSpec",
    "TrainDefaults",
    "__version__",
    "hookimpl",
]
