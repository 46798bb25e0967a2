"""Every hook a repbench plugin can implement: the plugin author's reference.

A plugin is a module of functions decorated with ``@benchmark.hookimpl``, declared in the plugin distribution's
``pyproject.toml``::

    [project.entry-points.repbench]
    myplugin = "my_package.plugin"

Each hook takes no arguments and returns a list of specs; repbench calls it once per run, checks every spec
(type, name, duplicates) and remembers which plugin registered it. A hook that raises, or returns something
malformed, is reported with the plugin's name and the original error; the other plugins still load.
The built-in plugins (``benchmark.plugins.BUILTIN_PLUGINS``: modules in each concept's folder) use exactly these
hooks.
"""

from __future__ import annotations

import pluggy

from benchmark.specs import DatasetSpec, EncoderSpec, MethodSpec, ProtocolSpec

PROJECT_NAME = "repbench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_encoders() -> list[EncoderSpec]:
    """Return the encoders this plugin provides.

    Each :class:`EncoderSpec` has a ``name`` users type (``myorg/vit-small``; a name ending in ``/`` is a family
    that serves ``myorg/<anything>`` and receives the rest as ``variant=``), a ``modality`` ("image" or "text"),
    declared ``defaults`` for its options, and a lazy ``load(**options)`` returning an :class:`Encoder`.

    Example::

        @hookimpl
        def register_encoders():
            return [EncoderSpec("myorg/tiny", "image", load=lambda **o: TinyEncoder(**o), defaults={"width": 32})]
    """


@hookspec
def register_datasets() -> list[DatasetSpec]:
    """Return the labelled datasets this plugin provides.

    Each :class:`DatasetSpec` has a ``name``, a ``modality`` and a lazy ``load(**options)`` returning a
    :class:`Dataset` with fixed ``train`` and ``test`` splits (optionally ``val``), ``classes``, ``info`` (source,
    split sizes and seed, recorded in every result) and a ``fingerprint`` for the feature cache. Loading must not
    download anything unless the user asked for that dataset.

    Example::

        @hookimpl
        def register_datasets():
            return [DatasetSpec("myorg/shapes", "image", load=load_shapes, defaults={"n": 600})]
    """


@hookspec
def register_protocols() -> list[ProtocolSpec]:
    """Return the evaluation protocols this plugin provides.

    ``evaluate(task, **options)`` gets an :class:`EvalTask` (``task.features("train")`` gives cached frozen
    features and labels; ``task.load_encoder()`` the encoder itself, for fine-tuning) and returns a
    :class:`ProtocolOutput` with test predictions and any extra metrics. Hyperparameters must be chosen without
    looking at the test split. ``primary_metric`` names the metric leaderboards show.

    Example::

        @hookimpl
        def register_protocols():
            return [ProtocolSpec("nearest-centroid", evaluate=nearest_centroid)]
    """


@hookspec
def register_methods() -> list[MethodSpec]:
    """Return the pretraining methods this plugin provides.

    ``pretrain(backbone, data, *, budget, seed, workdir, **options)`` trains starting from ``backbone`` (an
    :class:`EncoderSpec`) on ``data`` (an unlabeled :class:`Split`) within ``budget`` (a :class:`Budget`),
    writes its checkpoints under ``workdir`` and returns a new :class:`EncoderSpec` that loads the trained
    encoder, so the same protocols can score it.

    Example::

        @hookimpl
        def register_methods():
            return [MethodSpec("mymethod", pretrain=my_pretrain, defaults={"temperature": 0.1})]
    """
