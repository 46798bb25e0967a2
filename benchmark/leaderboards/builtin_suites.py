"""The built-in suites: the offline boards repbench publishes, as an ordinary ``register_suites`` plugin.

Both use the official full splits (no subsampling). Text datasets pin ``max_chars=1000``, the cap every text
dataset applies by default (:data:`benchmark.datasets.text.MAX_CHARS`), so a later change of that default cannot
silently change what ``offline-text-v1`` means.
"""

from __future__ import annotations

from benchmark.hookspecs import hookimpl
from benchmark.specs import SuiteSpec

PROTOCOLS = ("knn", "linear", "fewshot")
#: offline-text-v1's datasets, options pinned.
TEXT_V1 = ("r8[max_chars=1000]", "r52[max_chars=1000]", "20newsgroups[max_chars=1000]",
           "rotten-tomatoes[max_chars=1000]")
#: The offline embedding tasks (benchmark.datasets.embedding_tasks), every option pinned to today's default.
#: 20ng-lead-rerank-v1 serves both qrels-retrieval (its queries search the whole corpus, candidates unused:
#: the same numbers as 20ng-lead-retrieval-v1) and rerank (its candidate lists).
EMBEDDING_TASKS = ("20ng-halves-sts-v1[n_pairs=1500,max_chars=500,seed=0]",
                   "20ng-halves-pairs-v1[n_pairs=2000,max_chars=500,seed=0]",
                   "20ng-lead-rerank-v1[n_queries=1000,lead_words=8,max_chars=1000,seed=0]")


@hookimpl
def register_suites() -> list[SuiteSpec]:
    return [
        SuiteSpec("offline-vision-v1", datasets=("digits", "mnist5k", "fashion-mnist"), protocols=PROTOCOLS,
                  description="digits, mnist5k and Fashion-MNIST (official 60k/10k) x kNN, linear probe, few-shot; "
                              "ranked by Borda count"),
        SuiteSpec("offline-text-v1",
                  datasets=TEXT_V1,
                  protocols=PROTOCOLS,
                  description="R8, R52, 20 Newsgroups (official splits), Rotten Tomatoes (seeded 70/30), texts cut "
                              "at 1,000 characters x kNN, linear probe, few-shot; ranked by Borda count"),
        SuiteSpec("offline-text-v2", datasets=TEXT_V1 + EMBEDDING_TASKS,
                  protocols=(*PROTOCOLS, "sts", "pairclass", "qrels-retrieval", "rerank"),
                  description="offline-text-v1's classification cells plus the offline embedding tasks derived "
                              "from 20 Newsgroups (STS, pair classification, retrieval over qrels, reranking); "
                              "each protocol on the datasets of the kinds it accepts; ranked by Borda count"),
    ]
