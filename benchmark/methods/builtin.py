"""The built-in methods' registrations (``builtin:simclr`` ... ``builtin:mae``) and the ``run:`` encoder family
(``builtin:runs``).

Each class is one plugin (``benchmark.plugins.BUILTIN_PLUGINS`` names it), with the same ``@hookimpl`` a
third-party plugin module has. A method's ``build`` and ``validate`` live in its own module
(:mod:`benchmark.methods.simclr`, ...), which imports torch; the specs here name them with
:class:`~benchmark.specs.lazy.Lazy`, so registering imports none of it, and the options and defaults are still
read from ``build``'s signature (from its source).
"""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.specs import EncoderSpec, MethodSpec
from benchmark.specs.lazy import Lazy


def _method(name: str, description: str, uses_labels: bool = False) -> MethodSpec:
    return MethodSpec(name, build=Lazy(f"benchmark.methods.{name}:build"),
                      validate=Lazy(f"benchmark.methods.{name}:validate"), uses_labels=uses_labels,
                      description=description)


class SimCLR:
    """``builtin:simclr``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("simclr", "SimCLR (Chen et al., 2020): NT-Xent over two augmented views, "
                                  "lightly's CIFAR-10 recipe")]


class BYOL:
    """``builtin:byol``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("byol", "BYOL (Grill et al., 2020): online predictor regresses an EMA target's "
                                "projection, lightly's CIFAR-10 recipe")]


class VICReg:
    """``builtin:vicreg``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("vicreg", "VICReg (Bardes et al., 2022): invariance, variance and covariance terms "
                                  "on an expander; LARS as in the paper")]


class Autoencoder:
    """``builtin:autoencoder``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("autoencoder", "convolutional autoencoder: MSE reconstruction of a lightly cropped view "
                                       "from the embedding")]


class Supervised:
    """``builtin:supervised``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("supervised", "supervised reference: linear head and cross-entropy on the labels "
                                      "(reads labels)", uses_labels=True)]


class BarlowTwins:
    """``builtin:barlowtwins``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("barlowtwins", "Barlow Twins (Zbontar et al., 2021): cross-correlation of two views "
                                       "towards the identity; LARS as in the paper, projector scaled down")]


class MoCoV3:
    """``builtin:mocov3``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("mocov3", "MoCo v3 (Chen et al., 2021): symmetric InfoNCE against a momentum key "
                                  "encoder, with a predictor; ResNet and ViT recipes of the paper")]


class DINO:
    """``builtin:dino``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("dino", "DINO (Caron et al., 2021): self-distillation with multi-crop, an EMA teacher, "
                                "centring and sharpening; AdamW as in the paper, head scaled down")]


class MAE:
    """``builtin:mae``."""

    @staticmethod
    @hookimpl
    def register_methods() -> list[MethodSpec]:
        return [_method("mae", "MAE (He et al., 2022): 75% of the patches masked, the encoder sees the rest, "
                               "a light decoder predicts normalised pixels; ViT backbones")]


class Runs:
    """``builtin:runs``: ``run:<folder>``, a backbone trained by ``repbench pretrain`` (:mod:`.runs`)."""

    @staticmethod
    @hookimpl
    def register_encoders() -> list[EncoderSpec]:
        return [EncoderSpec("run:", "image", load=Lazy("benchmark.methods.runs:load_run"),
                            name_of=Lazy("benchmark.methods.runs:name_run"),
                            weights_id=Lazy("benchmark.methods.runs:run_weights_id"),
                            description="a backbone trained by `repbench pretrain`: run:<run folder>, or "
                                        "run:<name> of a folder under ./runs",
                            examples=("run:runs/simclr__timm-resnet18__fashion-mnist__s0__1a2b3c4d5e",))]
