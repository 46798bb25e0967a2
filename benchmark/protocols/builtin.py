"""The registrations of the built-in protocols whose maths imports torch: ``builtin:knn``, ``builtin:linear``,
``builtin:fewshot``, ``builtin:finetune``, ``builtin:retrieval``, ``builtin:cluster``, ``builtin:labeleff`` and
``builtin:qrels-retrieval``.

Each class is one plugin (``benchmark.plugins.BUILTIN_PLUGINS`` names it), with the same ``@hookimpl`` a
third-party plugin module has. Its spec names the evaluation and the validator in the protocol's own module with
:class:`~benchmark.specs.lazy.Lazy`, so registering imports none of that module; the options and their defaults
are still read from the evaluation's signature (from its source). The torch-free protocols (``sts``,
``pairclass``, ``rerank``) register in their own modules.
"""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.protocols.finetune_options import DEFAULTS as FINETUNE_DEFAULTS
from benchmark.specs import ProtocolSpec
from benchmark.specs.lazy import Lazy


def _at(module: str, function: str) -> Lazy:
    return Lazy(f"benchmark.protocols.{module}:{function}")


class Knn:
    """``builtin:knn``: :mod:`benchmark.protocols.knn`."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("knn", primary_metric="top1", evaluate=_at("knn", "evaluate_knn"),
                             validate=_at("knn", "validate_knn"),
                             description="k-NN on L2-normalised features, DINO exp(sim/T) voting (k=20, T=0.07); "
                                         "top1@k for every k in ks")]


class Linear:
    """``builtin:linear``: :mod:`benchmark.protocols.linear`."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("linear", primary_metric="top1",
                             evaluate=_at("linear", "evaluate_linear"), validate=_at("linear", "validate_linear"),
                             description="multinomial logistic regression (L-BFGS, scikit-learn's objective) on "
                                         "standardised features, C swept on a validation split")]


class Fewshot:
    """``builtin:fewshot``: :mod:`benchmark.protocols.fewshot`."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("fewshot", primary_metric="top1",
                             evaluate=_at("fewshot", "evaluate_fewshot"), validate=_at("fewshot", "validate_fewshot"),
                             description="logistic regression (or kNN) on `shots` samples per class, mean over "
                                         "`experiments` seeded draws; style=mteb reproduces MTEB classification")]


class Finetune:
    """``builtin:finetune``: :mod:`benchmark.protocols.finetune` (its options: :mod:`.finetune_options`)."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("finetune", evaluate=Lazy("benchmark.protocols.finetune:evaluate"),
                             validate=Lazy("benchmark.protocols.finetune_options:validate_finetune"),
                             defaults=dict(FINETUNE_DEFAULTS),
                             description="encoder + linear head trained end to end (AdamW, warm-up + cosine); "
                                         "best epoch on val")]


class Retrieval:
    """``builtin:retrieval``: :mod:`benchmark.protocols.retrieval`."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("retrieval", primary_metric="map@r",
                             evaluate=_at("retrieval", "evaluate_retrieval"),
                             validate=_at("retrieval", "validate_retrieval"),
                             description="test queries rank the train split by cosine similarity, relevant = same "
                                         "class: mAP@R (Musgrave et al. 2020) and recall@k (a relevant item in "
                                         "the top k)")]


class Cluster:
    """``builtin:cluster``: :mod:`benchmark.protocols.cluster`."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("cluster", primary_metric="nmi",
                             evaluate=_at("cluster", "evaluate_cluster"), validate=_at("cluster", "validate_cluster"),
                             description="k-means (k = classes, k-means++, several seeds) on L2-normalised test "
                                         "features: NMI, ARI and V-measure (mean, std and 95% CI over seeds)")]


class Labeleff:
    """``builtin:labeleff``: :mod:`benchmark.protocols.labeleff`."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("labeleff", primary_metric="auc",
                             evaluate=_at("labeleff", "evaluate_labeleff"),
                             validate=_at("labeleff", "validate_labeleff"),
                             description="label efficiency: logistic regression (or kNN) at 1, 2, 4, 8, 16, 64 "
                                         "and all labels per class, 5 seeded draws each; AUC over log2(labels "
                                         "per class)")]


class QrelsRetrieval:
    """``builtin:qrels-retrieval``: :mod:`benchmark.protocols.qrels`."""

    @staticmethod
    @hookimpl
    def register_protocols() -> list[ProtocolSpec]:
        return [ProtocolSpec("qrels-retrieval", primary_metric="ndcg@10",
                             evaluate=_at("qrels", "evaluate_qrels"),
                             validate=_at("qrels", "validate_qrels"), kinds=("retrieval",),
                             modalities=("text", "image"),
                             description="search a corpus by cosine similarity, judged by graded relevance "
                                         "(BEIR/MTEB): nDCG/MAP/MRR/recall/precision@1,3,5,10,100, equal to "
                                         "trec_eval")]
