"""``repbench eval --save-predictions``: what a protocol predicted, beside its record, for anyone to rescore.

Next to ``<record>.json`` (same stem), written atomically:

* ``<stem>.run``: a TREC run file for rankings (``qrels-retrieval``, ``rerank``): one line per retrieved document,
  ``qid Q0 docid rank score tag``, the top :data:`RUN_DEPTH` per query in rank order (rank from 1; ``tag`` is the
  encoder's label with spaces removed). ``trec_eval`` / ``pytrec_eval`` on it with the dataset's qrels gives the
  record's numbers (ties: trec_eval orders equal scores by descending docid, as the protocol does by default).
* ``<stem>.pairs.csv``: ``id,score,gold`` per pair (``sts``, ``pairclass``: the similarity and the gold score or
  label).
* ``<stem>.predictions.csv``: ``index,prediction,label`` per test sample for protocols that predict classes.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.specs import ProtocolOutput
from benchmark.storage.atomic import atomic_path

#: Documents per query in a run file.
RUN_DEPTH = 100


def write_predictions(record_path: Path, output: ProtocolOutput, tag: str) -> list[Path]:
    """Write every prediction file ``output`` has beside ``record_path``; return their paths."""
    stem = record_path.with_suffix("")
    written = []
    if "run" in output.saved:
        qids, doc_ids, indices, scores = output.saved["run"]
        written.append(write_run(stem.with_name(stem.name + ".run"), qids, doc_ids, indices, scores, tag=tag))
    if "pairs" in output.saved:
        ids, scores, gold = output.saved["pairs"]
        written.append(_csv(stem.with_name(stem.name + ".pairs.csv"), ("id", "score", "gold"),
                            zip(ids, map(_num, scores), map(_num, gold), strict=True)))
    if output.predictions is not None and output.labels is not None:
        rows = zip(range(len(output.labels)), np.asarray(output.predictions).tolist(),
                   np.asarray(output.labels).tolist(), strict=True)
        written.append(_csv(stem.with_name(stem.name + ".predictions.csv"), ("index", "prediction", "label"), rows))
    return written


def _num(value: Any) -> str:
    return repr(float(value)) if isinstance(value, (float, np.floating)) else str(value)


def _csv(path: Path, header: tuple[str, ...], rows: Any) -> Path:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(header)
        out.writerows(rows)
    return path


def write_run(path: Path, query_ids: list[str], doc_ids: list[str], indices: np.ndarray, scores: np.ndarray,
              tag: str = "repbench") -> Path:
    """A TREC run file: per query, its ranked documents (``indices`` into ``doc_ids``; -1 pads short lists)."""
    tag = re.sub(r"\s+", "", tag) or "repbench"
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for qid, row, vals in zip(query_ids, indices[:, :RUN_DEPTH], scores[:, :RUN_DEPTH], strict=True):
            rank = 0
            for j, s in zip(row, vals, strict=True):
                if j < 0:
                    continue
                rank += 1
                fh.write(f"{qid} Q0 {doc_ids[j]} {rank} {float(s)!r} {tag}\n")
    return path
