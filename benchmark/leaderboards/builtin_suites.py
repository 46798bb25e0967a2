"""The built-in suites: the offline boards repbench publishes, as an ordinary ``register_suites`` plugin.

Both use the official full splits (no subsampling). Text datasets pin ``max_chars=1000``, the cap every text
dataset applies by default (:data:`benchmark.datasets.text.MAX_CHARS`), so a later change of that default cannot
silently change what ``offline-text-v1`` means.
"""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.specs import SuiteSpec

PROTOCOLS = ("knn", "linear", "fewshot")


@hookimpl
def register_suites() -> list[SuiteSpec]:
    return [
        SuiteSpec("offline-vision-v1", datasets=("digits", "mnist5k", "fashion-mnist"), protocols=PROTOCOLS,
                  description="digits, mnist5k and Fashion-MNIST (official 60k/10k) x kNN, linear probe, few-shot; "
                              "ranked by Borda count"),
        SuiteSpec("offline-text-v1",
                  datasets=("r8[max_chars=1000]", "r52[max_chars=1000]", "20newsgroups[max_chars=1000]",
                            "rotten-tomatoes[max_chars=1000]"),
                  protocols=PROTOCOLS,
                  description="R8, R52, 20 Newsgroups (official splits), Rotten Tomatoes (seeded 70/30), texts cut "
                              "at 1,000 characters x kNN, linear probe, few-shot; ranked by Borda count"),
    ]
