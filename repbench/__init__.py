"""repbench: how good and how fast is this encoder, or this pretraining method?

The documented Python entry point. The implementation lives in the ``benchmark`` package (the plugin authors'
API: ``benchmark.hookimpl`` and the spec dataclasses); this module is a thin facade over it::

    import repbench

    records = repbench.evaluate(model, datasets=["digits"], protocols=["knn", "linear"], results_dir="results")
    for r in records:
        print(r.encoder.label, r.dataset.label, r.protocol.label, r.metric, r.value)

``evaluate`` takes a spec string (``"timm/resnet18[pretrained=false]"``), any object meeting the Encoder
contract, a timm model, a ``torch.nn.Module`` with ``preprocess=``, or a sentence-transformers-like model;
datasets by name or as Dataset objects. See :func:`benchmark.api.evaluate`.
"""

from benchmark import __version__
from benchmark.api import evaluate
from benchmark.catalog import Catalog
from benchmark.datasets import InMemoryDataset
from benchmark.errors import RepbenchError
from benchmark.results import Record, load_records
from benchmark.specs import Dataset, Encoder, Split

__all__ = ["Catalog", "Dataset", "Encoder", "InMemoryDataset", "Record", "RepbenchError", "Split", "__version__",
           "evaluate", "load_records"]
