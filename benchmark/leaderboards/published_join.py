"""A published number beside the measured cell it can be compared with: MTEB results (``repbench import``) of
the tasks repbench reads as ``mteb/<Task>`` (:mod:`benchmark.datasets.mteb_tasks`).

A published record and a measured one are *the same cell* when all of these hold, and only then:

* the published record is an MTEB ``TaskResult`` entry (``provenance.format == "mteb-task-result"``) of subset
  ``default`` (the English tasks have no other);
* the measured record is ``ok``, its dataset says ``mteb_task`` = the result's ``task_name`` and ``split`` = the
  result's split;
* the model is the same: the published model name is the measured encoder's name or label, or its name without
  the ``hf/`` prefix (``hf/BAAI/bge-small-en-v1.5`` is MTEB's ``BAAI/bge-small-en-v1.5``);
* (a different dataset revision is said in the ``measured cell`` column, not refused: MTEB re-uploads
  datasets in new formats with the same content);
* the protocol measures MTEB's metric (:data:`MTEB_METRICS`): ``sts`` ``spearman`` = ``cosine_spearman``,
  ``pairclass`` ``max_ap`` = ``max_ap`` (older files: ``cosine_ap``), ``qrels-retrieval`` ``ndcg@10`` =
  ``ndcg_at_10``, ``rerank`` ``map`` = ``map`` (newer files: ``map_at_1000``).

The join only adds columns to the published section (``measured (%)`` and ``difference (pp)``, measured minus
published); a published number still never enters a measured table, an aggregate or a rank.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from benchmark.results.record import Record, is_finite

MTEB_FORMAT = "mteb-task-result"
#: protocol -> (its metric, the MTEB score keys that are the same number, first present wins)
MTEB_METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sts": ("spearman", ("cosine_spearman",)),
    "pairclass": ("max_ap", ("max_ap", "cosine_ap")),
    "qrels-retrieval": ("ndcg@10", ("ndcg_at_10",)),
    "rerank": ("map", ("map", "map_at_1000")),
}


@dataclass(frozen=True)
class Joined:
    """A published record's measured counterpart: which cell, which metric, both values (fractions)."""

    measured_label: str
    metric: str
    published_key: str
    published: float
    measured: float
    note: str = ""  # e.g. the two used different dataset revisions

    @property
    def difference(self) -> float:
        return self.measured - self.published


def _models(record: Record) -> set[str]:
    names = {record.encoder.name, record.encoder.display}
    return names | {n[3:] for n in names if n.startswith("hf/")}


def _split(record: Record) -> str | None:
    split = record.dataset.extra.get("split")
    return split if isinstance(split, str) else None


def join_published(published: Iterable[Record], measured: Iterable[Record]) -> dict[str, Joined]:
    """Published record id -> its :class:`Joined` measured cell (the newest when several match); records
    without a counterpart are left out."""
    candidates = [m for m in measured if m.origin == "measured" and m.status == "ok"
                  and m.protocol.name in MTEB_METRICS and isinstance(m.dataset.extra.get("mteb_task"), str)]
    out: dict[str, Joined] = {}
    for p in published:
        prov = p.provenance or {}
        if prov.get("format") != MTEB_FORMAT or prov.get("hf_subset", "default") != "default":
            continue
        matches = [m for m in candidates if m.dataset.extra["mteb_task"] == p.dataset.name
                   and _split(m) == prov.get("split") and p.encoder.name in _models(m)]
        for m in sorted(matches, key=lambda r: r.created_at or "", reverse=True):
            metric, keys = MTEB_METRICS[m.protocol.name]
            key = next((k for k in keys if is_finite(p.metrics.get(k))), None)
            value = m.metrics.get(metric)
            if key is not None and is_finite(value):
                theirs, ours = p.dataset.extra.get("revision"), m.dataset.extra.get("revision")
                note = f"; dataset revision {ours} here, {theirs} there" if theirs and ours and theirs != ours else ""
                out[p.id] = Joined(f"{m.encoder.display} · {m.dataset.display} · {m.protocol.display}", metric,
                                   key, float(p.metrics[key]), float(cast(float, value)), note)
                break
    return out


def joined_columns(ids: Iterable[str], joined: Mapping[str, Joined]) -> dict[str, list[str]]:
    """The display columns for published rows (in ``ids`` order): the measured value, the difference in
    percentage points and the measured cell, "–" / "" where there is none."""
    cols: dict[str, list[str]] = {"measured (%)": [], "difference (pp)": [], "measured cell": []}
    for i in ids:
        j = joined.get(i)
        cols["measured (%)"].append(f"{j.measured * 100:.2f}" if j else "–")
        cols["difference (pp)"].append(f"{j.difference * 100:+.2f}" if j else "–")
        cols["measured cell"].append(f"{j.measured_label} ({j.metric} vs {j.published_key}{j.note})" if j else "")
    return cols
