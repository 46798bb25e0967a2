"""Aggregates of a score table (encoders as rows, datasets as columns, no missing cells): mean, mean rank, Borda.

Definitions (MTEB's, for Borda and its rank):

- per dataset, an encoder's *rank* among the n ranked encoders: 1 is best, tied scores share the average of the
  ranks they span (``method="average"``);
- *mean rank*: the mean of those ranks over the datasets (lower is better);
- *Borda count*: per dataset ``n - rank`` (the number of encoders it beats, a tie counting half), summed over
  the datasets; the *Borda rank* ranks that sum, ties sharing the best rank (``method="min"``);
- *mean*: the mean score;
- *normalised score*: per dataset ``(score - floor) / (ceiling - floor)``, averaged over the datasets; the floor
  is chance (1/classes) or a named baseline encoder's score, the ceiling a perfect score (1).

The caller passes only complete rows: an encoder missing a dataset is not ranked on fewer cells.
"""

from __future__ import annotations

import pandas as pd

#: What each aggregation is called in tables and legends.
TITLES = {"borda": "Borda count", "mean": "mean score", "mean_rank": "mean rank", "normalized": "normalised score"}


def _check(scores: pd.DataFrame) -> None:
    if scores.isna().any().any():
        raise ValueError("aggregates need a complete table: drop encoders with missing cells first")


def ranks(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.DataFrame:
    """Each encoder's rank per dataset: 1 is best, ties share the average rank."""
    _check(scores)
    return scores.rank(axis=0, method="average", ascending=not higher_is_better)


def mean_rank(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    return ranks(scores, higher_is_better).mean(axis=1)


def borda(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """The Borda count: per dataset ``n - rank``, summed over datasets."""
    return (len(scores) - ranks(scores, higher_is_better)).sum(axis=1)


def borda_rank(scores: pd.DataFrame, higher_is_better: bool = True) -> pd.Series:
    """1 for the highest Borda count; ties share the best rank they span."""
    return borda(scores, higher_is_better).rank(method="min", ascending=False).astype(int)


def normalized(scores: pd.DataFrame, floor: pd.Series, ceiling: float = 1.0) -> pd.Series:
    """The mean over datasets of ``(score - floor) / (ceiling - floor)``; ``floor`` is indexed by dataset. A
    dataset whose floor is not below the ceiling raises ValueError (nothing to normalise against)."""
    _check(scores)
    floor = floor.reindex(scores.columns)
    if floor.isna().any() or (floor >= ceiling).any():
        bad = [str(c) for c in scores.columns if not floor[c] < ceiling]
        raise ValueError(f"no usable floor below {ceiling} for {', '.join(bad)}")
    return ((scores - floor) / (ceiling - floor)).mean(axis=1)


def aggregate(scores: pd.DataFrame, floor: pd.Series | None, higher_is_better: bool = True) -> pd.DataFrame:
    """One row per encoder: ``mean``, ``mean_rank``, ``borda``, ``borda_rank`` and ``normalized`` (NaN without
    a floor). An empty table gives an empty frame with those columns."""
    columns = ["mean", "mean_rank", "borda", "borda_rank", "normalized"]
    if scores.empty or scores.shape[1] == 0:
        return pd.DataFrame(index=scores.index, columns=columns, dtype=float)
    out = pd.DataFrame({"mean": scores.mean(axis=1), "mean_rank": mean_rank(scores, higher_is_better),
                        "borda": borda(scores, higher_is_better),
                        "borda_rank": borda_rank(scores, higher_is_better)})
    out["normalized"] = normalized(scores, floor) if floor is not None else float("nan")
    return out[columns]


def order(agg: pd.DataFrame, by: str, higher_is_better: bool = True) -> list[str]:
    """The encoders best first by aggregation ``by`` (ties broken by the mean, then the name). For a metric
    where lower is better, the best mean (and normalised score) is the lowest; ranks and Borda already say so."""
    if by not in TITLES:
        raise ValueError(f"unknown aggregation {by!r}; use one of {', '.join(TITLES)}")
    frame = agg.assign(_name=agg.index.astype(str))
    low = not higher_is_better
    if by == "mean_rank":
        keys, ascending = ["mean_rank", "mean", "_name"], [True, low, True]
    elif by in ("mean", "normalized"):
        keys, ascending = [by, "mean", "_name"], [low, low, True]
    else:
        keys, ascending = [by, "mean", "_name"], [False, low, True]
    return list(frame.sort_values(keys, ascending=ascending, na_position="last").index)
