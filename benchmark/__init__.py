"""repbench: how good and how fast is this encoder, or this pretraining method?

The public API for plugin authors: ``hookimpl``, the spec dataclasses and the protocols they build.
"""

from benchmark.hookspecs import hookimpl
from benchmark.specs import (
    Budget,
    Dataset,
    DatasetSpec,
    Encoder,
    EncoderSpec,
    EvalTask,
    MethodSpec,
    ProtocolOutput,
    ProtocolSpec,
    Split,
)

__version__ = "0.1.0"

__all__ = [
    "Budget",
    "Dataset",
    "DatasetSpec",
    "Encoder",
    "EncoderSpec",
    "EvalTask",
    "MethodSpec",
    "ProtocolOutput",
    "ProtocolSpec",
    "Split",
    "__version__",
    "hookimpl",
]
