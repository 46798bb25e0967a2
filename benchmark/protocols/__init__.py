"""Protocols: each module holds one evaluation's maths; the torch-free ones register beside it, the others from
:mod:`~benchmark.protocols.builtin`, which names their code lazily (``repbench list`` imports no torch).

:mod:`~benchmark.protocols.knn`, :mod:`~benchmark.protocols.linear`, :mod:`~benchmark.protocols.fewshot` and
:mod:`~benchmark.protocols.finetune` are built-in plugin modules (templates for third-party protocols), as are
the embedding-structure and label-efficiency protocols :mod:`~benchmark.protocols.cluster`,
:mod:`~benchmark.protocols.retrieval` (on knn's chunked top-k) and :mod:`~benchmark.protocols.labeleff`;
:mod:`~benchmark.protocols.metrics` holds the scores the harness computes from every protocol's predictions;
:mod:`~benchmark.checks` the option and feature checks they (and the built-in datasets) share.
"""
