"""Every hook a repbench plugin can implement: the plugin author's reference.

A plugin is a module of functions decorated with ``@benchmark.hookimpl``, declared in the plugin distribution's
``pyproject.toml``::

    [project.entry-points.repbench]
    myplugin = "my_package.plugin"

Each hook takes no arguments and returns a list of specs; repbench calls it once per run, checks every spec
(type, name, duplicates) and remembers which plugin registered it. A hook that raises, or returns something
malformed, is reported with the plugin's name and the original error; the other plugins still load.
The built-in plugins (``benchmark.plugins.BUILTIN_PLUGINS``: modules in each concept's folder, or classes in its
light ``builtin`` module) use exactly these hooks.

Any callable a spec holds (``load``, ``evaluate``, ``build``, ``validate``, ...) may be a
:class:`benchmark.Lazy` naming ``"package.module:function"``: the module is imported on the first call, so a
plugin whose code imports torch can register without importing it (``repbench list`` stays instant), and
``defaults=None`` still reads the options from the function's signature, parsed from its source.
"""

from __future__ import annotations

import pluggy

from benchmark.specs import (
    DatasetSpec,
    EncoderSpec,
    MethodSpec,
    ProtocolSpec,
    SuiteSpec,
)

PROJECT_NAME = "repbench"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_encoders() -> list[EncoderSpec]:
    """Return the encoders this plugin provides.

    Each :class:`EncoderSpec` has a ``name`` users type (``myorg/vit-small``; a name ending in ``/`` is a family
    that serves ``myorg/<anything>`` and receives the rest as ``variant=``), a ``modality`` ("image" or "text")
    and a lazy ``load(**options)`` returning an :class:`Encoder`. The options are ``load``'s keyword parameters
    with defaults (read from its signature unless ``defaults=`` is given); users' strings are coerced by their
    type annotations. ``validate(options)``, if given, rejects unusable values at plan time, before anything
    loads, by raising :class:`~benchmark.errors.OptionError`. What ``load`` returns is checked at run time:
    features must be finite, (batch, embed_dim) when ``embed_dim`` is known. An encoder with intermediate
    layers declares a ``layer: int | None = None`` option (-1 = the default representation, with its fingerprint)
    and, when it can count them without weights, ``count_layers=``; then ``layers=all`` gives one encoder per
    depth (:mod:`benchmark.encoders.layers`).

    Example::

        class TinyEncoder:
            def __init__(self, width: int = 32) -> None: ...

        @hookimpl
        def register_encoders():
            return [EncoderSpec("myorg/tiny", "image", load=TinyEncoder)]  # option: width=32
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this


@hookspec
def register_datasets() -> list[DatasetSpec]:
    """Return the labelled datasets this plugin provides.

    Each :class:`DatasetSpec` has a ``name``, a ``modality`` and a lazy ``load(**options)`` returning a
    :class:`Dataset` with fixed ``train`` and ``test`` splits (optionally ``val``), ``classes``, ``info`` (source,
    split sizes and seed, recorded in every result) and a ``fingerprint`` for the feature cache. Loading must not
    download anything unless the user asked for that dataset. Labels must lie in ``0..len(classes)-1`` and every
    split have as many labels as samples: the harness checks, naming the split. Options and ``validate`` work as
    for encoders. A family whose variant names other datasets (``shift:A>B``, ``corrupt:D``) also sets
    ``DatasetSpec.bind``, which resolves those names through the catalog (building blocks in
    :mod:`benchmark.datasets.derived`).

    Example::

        @hookimpl
        def register_datasets():
            return [DatasetSpec("myorg/shapes", "image", load=load_shapes, defaults={"n": 600})]
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this


@hookspec
def register_protocols() -> list[ProtocolSpec]:
    """Return the evaluation protocols this plugin provides.

    ``evaluate(task, **options)`` gets an :class:`EvalTask` (``task.features("train")`` gives cached frozen
    features and labels; ``task.load_encoder()`` the encoder itself, for fine-tuning) and returns a
    :class:`ProtocolOutput` with test predictions *and* the test labels they are scored against, plus any extra
    metrics (a protocol that scores itself returns neither and puts ``top1`` in ``metrics``). Hyperparameters must
    be chosen without looking at the test split. ``primary_metric`` names the metric leaderboards show. The options
    are ``evaluate``'s keyword parameters with defaults; ``validate`` checks their values at plan time.

    Example::

        @hookimpl
        def register_protocols():
            return [ProtocolSpec("nearest-centroid", evaluate=nearest_centroid)]
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this


@hookspec
def register_methods() -> list[MethodSpec]:
    """Return the pretraining methods this plugin provides.

    A method defines only what is specific to it; the core's loop owns budget, optimiser, schedule, AMP,
    checkpoints, resume and DDP. ``build(backbone, **options)`` receives a :class:`Backbone` (the resolved
    encoder, its trainable module, input size and normalisation) and returns a :class:`Method`: ``views(sample)``
    (one raw sample -> a list of view tensors), an ``objective`` module (``objective(views, labels) -> loss``,
    never calling backward or touching devices), optional ``momentum_pairs`` (EMA applied by the core after each
    step) and its :class:`TrainDefaults`. The options are ``build``'s keyword parameters with defaults.

    A complete SimSiam-style method. Example::

        import torch, torch.nn.functional as F
        from benchmark import Backbone, BuiltMethod, MethodSpec, TrainDefaults, hookimpl
        from benchmark.methods.views import ImageViews, MultiView

        class Objective(torch.nn.Module):
            def __init__(self, backbone: Backbone, dim: int):
                super().__init__()
                self.encoder = backbone.encoder
                self.predictor = torch.nn.Sequential(torch.nn.Linear(backbone.embed_dim, dim), torch.nn.ReLU(),
                                                     torch.nn.Linear(dim, backbone.embed_dim))

            def forward(self, views, labels=None):
                z1, z2 = (self.encoder.encode(v) for v in views)
                p1, p2 = self.predictor(z1), self.predictor(z2)
                return -(F.cosine_similarity(p1, z2.detach()).mean() + F.cosine_similarity(p2, z1.detach()).mean()) / 2

        def build(backbone: Backbone, dim: int = 512) -> BuiltMethod:
            augment = ImageViews(backbone)
            return BuiltMethod(Objective(backbone, dim), MultiView(augment, augment),
                               TrainDefaults(optimizer="sgd", lr=0.05, reference_batch=256))

        @hookimpl
        def register_methods():
            return [MethodSpec("simsiam", build=build, description="SimSiam (Chen & He, 2021)")]
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this


@hookspec
def register_suites() -> list[SuiteSpec]:
    """Return the named, versioned benchmark suites this plugin publishes.

    A :class:`SuiteSpec` fixes a leaderboard's cells: its ``name`` ends in ``-v<N>`` and never changes meaning (a
    new cell set is a new version), ``datasets`` and ``protocols`` are spec strings with their options pinned, and
    ``aggregation`` (``borda``, ``mean``, ``mean_rank`` or ``normalized``) orders the table; ``baseline`` names
    an encoder whose scores are the floor of the normalised score (default: chance). ``repbench eval --suite
    NAME --encoder ...`` runs every cell and tags the records with the suite; ``repbench leaderboard --suite
    NAME`` ranks only over its cells and lists the cells each encoder lacks. The datasets and protocols may come
    from any plugin; they are resolved when the suite is used.

    Example::

        @hookimpl
        def register_suites():
            return [SuiteSpec("myorg-shapes-v1", datasets=("myorg/shapes[n=600]",), protocols=("knn", "linear"),
                              aggregation="mean", description="Shapes, kNN and linear probe")]
    """
    raise NotImplementedError  # a specification: pluggy calls the plugins' implementations, never this
