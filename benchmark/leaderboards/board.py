"""The leaderboard as data: one table per (protocol, modality), ranked on the cells every ranked encoder has.

:func:`build_board` turns validated records (and throughput records) into a :class:`Board`: for each protocol
and modality, encoders as rows and datasets as columns (short labels; the full spec goes in the legend), each cell
the primary metric in percent with its 95% CI half-width (or the spread over seeds), the best per column marked.
Aggregates (:mod:`benchmark.leaderboards.aggregate`) use only the table's datasets, and only encoders with a
number in every one are ranked; the others are listed apart with the cells they lack. With a suite, the columns
are the suite's datasets and nothing outside its cells is shown. Renderers live in
:mod:`benchmark.leaderboards.render`; a board round-trips through :meth:`Board.to_json` / :meth:`Board.from_json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

import pandas as pd

from benchmark.errors import OptionError
from benchmark.leaderboards import aggregate as agg
from benchmark.leaderboards.kinds import kind_means
from benchmark.leaderboards.methods import distinct_run_labels, run_label
from benchmark.leaderboards.model import Board, BoardCell, Column, Row, Table
from benchmark.leaderboards.quality import quality_vs_throughput, throughput_rows
from benchmark.leaderboards.suites import ResolvedSuite
from benchmark.results.record import EncoderBlock, Record
from benchmark.results.store import newest_per_cell
from benchmark.results.throughput import ThroughputRecord

#: Metrics whose chance level is 1/classes (accuracies, and labeleff's area under an accuracy curve); the
#: normalised score of any other metric (NMI, ARI, mAP@R, ...) has the floor 0.
CHANCE_METRICS = ("top1", "top5", "accuracy", "auc")

#: Tables of these protocols come first, in this order; others follow alphabetically.
PROTOCOL_ORDER = ("knn", "linear", "fewshot", "finetune")


# --- records -> one row per record ---------------------------------------------------------------------------
def cells_frame(records: Iterable[Record]) -> pd.DataFrame:
    """One row per record with what tables need; the newest record per cell and seed."""
    rows = []
    kept = newest_per_cell(records)
    for r in kept:
        lo, hi = r.ci
        value = r.value if isinstance(r.value, (int, float)) else None
        rows.append({"encoder": r.encoder.display, "encoder_name": encoder_short_name(r.encoder),
                     "dataset": r.dataset.display, "dataset_name": short_name(r.dataset.name),
                     "protocol": r.protocol.display,
                     "modality": r.dataset.modality or r.encoder.modality or "?", "seed": r.seed,
                     "status": r.status if value is not None else "error", "value": value, "ci_low": lo,
                     "ci_high": hi, "classes": len(r.dataset.classes) if r.dataset.classes else None,
                     "n_test": r.n_test, "metric": r.metric, "higher_is_better": r.protocol.higher_is_better
                     is not False, "created_at": str(r.created_at or ""),
                     "kind": r.dataset.extra.get("kind") or "classification"})
    runs = {r.encoder.display: pre for r in kept if _is_run(pre := r.encoder.extra.get("pretraining"))}
    distinct = distinct_run_labels(runs)  # two runs of one method and backbone: their budgets (or seeds) apart
    for row in rows:
        row["encoder_name"] = distinct.get(row["encoder"], row["encoder_name"])
    frame = pd.DataFrame(rows, columns=["encoder", "encoder_name", "dataset", "dataset_name", "protocol", "modality",
                                        "seed", "status", "value", "ci_low", "ci_high", "classes", "n_test",
                                        "metric", "higher_is_better", "created_at", "kind"])
    return frame


def short_name(name: str) -> str:
    """A family name whose variant is a path (``run:runs/methods/simclr__timm-resnet18...``,
    ``imagefolder:/data/pets``) as the family and the path's last part up to its first ``__``
    (``run:simclr``, ``imagefolder:pets``); any other name as it is. The legend keeps the full label."""
    family, slash, rest = name.partition("/")
    if slash and rest.startswith(("/", "~")):  # hf//home/me/models/bert (records made before local_folder_name)
        return f"{family}/{rest.rstrip('/').rsplit('/', 1)[-1]}"
    family, sep, variant = name.partition(":")
    if not sep or ("/" not in variant and not (family == "run" and "__" in variant)):  # run:<content name>
        return name
    return f"{family}:{variant.rstrip('/').rsplit('/', 1)[-1].split('__')[0]}"


def _is_run(pre: Any) -> TypeGuard[Mapping[str, Any]]:
    """Whether an encoder's ``pretraining`` block names a run (its method and backbone)."""
    return isinstance(pre, Mapping) and bool(pre.get("method")) and bool(pre.get("backbone"))


def encoder_short_name(encoder: EncoderBlock) -> str:
    """An encoder's short name keeps what changes what the encoder is: ``timm/resnet18 (random init, 32 px)``,
    ``timm/resnet18 (ckpt best.safetensors@1a2b3c)``, ``hf/bert (layer 3)``, a ViT's patch size, query/document
    prompts (options a reader would otherwise take for the published model's). A pretraining run (``run:<folder>``
    whose record carries ``pretraining``) is named as the methods table names it: ``dino · resnet18``."""
    pre = encoder.extra.get("pretraining")
    if _is_run(pre):
        return run_label(pre)
    options = encoder.options or {}
    weights = str(encoder.weights or "")
    parts = []
    if weights.startswith("random-init") or (options.get("pretrained") is False and not options.get("checkpoint")):
        parts.append("random init")
    if options.get("checkpoint"):  # name@hash (records made before it kept the path: its last part, the hash)
        shown = str(options["checkpoint"]).replace(chr(92), "/").rstrip("/").rsplit("/", 1)[-1]
        sha = (encoder.extra.get("checkpoint") or {}).get("sha256") if "@" not in shown else None
        parts.append(f"ckpt {shown}" + (f"@{str(sha)[:6]}" if sha else ""))
    if options.get("img_size") is not None:
        parts.append(f"{options['img_size']} px")
    if options.get("patch_size") is not None:
        parts.append(f"patch {options['patch_size']}")
    if options.get("layer") is not None:
        parts.append(f"layer {options['layer']}")
    if options.get("query_prompt") or options.get("document_prompt"):  # asymmetric encodings: not the plain model
        parts.append("prompts")
    base = short_name(encoder.name)
    return f"{base} ({', '.join(parts)})" if parts else base


def short_labels(labels: Sequence[str], names: Mapping[str, str]) -> dict[str, str]:
    """label -> its name when that name is unique among ``labels``, else ``name (1)``, ``name (2)``, ..."""
    out: dict[str, str] = {}
    for label in labels:
        same = [x for x in labels if names.get(x, x) == names.get(label, label)]
        base = names.get(label, label)
        out[label] = base if len(same) == 1 else f"{base} ({same.index(label) + 1})"
    return out


def _cell(group: pd.DataFrame) -> BoardCell:
    ok = group[(group["status"] == "ok") & group["value"].notna()]
    if ok.empty:
        return BoardCell(None, status="error", seeds=len(group))
    value = float(ok["value"].mean()) * 100
    if len(ok) > 1:
        return BoardCell(value, float(ok["value"].std()) * 100, seeds=len(ok))
    lo, hi = ok["ci_low"].iloc[0], ok["ci_high"].iloc[0]
    half = (float(hi) - float(lo)) * 50 if pd.notna(lo) and pd.notna(hi) else None
    return BoardCell(value, half)


# --- one table ---------------------------------------------------------------------------------------------------
def _floor(part: pd.DataFrame, columns: list[Column], baseline: str | None,
           scores: pd.DataFrame) -> tuple[pd.Series | None, str]:
    """Per dataset label, the normalisation floor (a fraction) and how the legend names it."""
    if baseline is not None:
        base = part[(part["encoder"] == baseline) & (part["status"] == "ok")]
        values = base.groupby("dataset")["value"].mean()
        if all(c.label in values.index for c in columns):
            return values.reindex([c.label for c in columns]), f"baseline {baseline}"
    metric = str(part["metric"].iloc[0]) if len(part) else "top1"
    if not metric.startswith(CHANCE_METRICS):  # NMI, ARI, mAP@R: chance is not 1/classes
        return pd.Series({c.label: 0.0 for c in columns}), f"0 ({metric} has no 1/classes chance level)"
    if all(c.classes for c in columns):
        note = "chance (1/classes)" if baseline is None else f"chance (1/classes; baseline {baseline} lacks cells here)"
        return pd.Series({c.label: 1 / c.classes for c in columns if c.classes}), note
    return None, "none (the records do not give every dataset's classes)"


def build_table(part: pd.DataFrame, protocol: str, modality: str, *, datasets: Sequence[str] | None = None,
                ranked_by: str = "borda", baseline: str | None = None,
                eshort: Mapping[str, str] | None = None) -> Table:
    """The table of one (protocol, modality) from :func:`cells_frame` rows; ``datasets`` (labels) fixes the
    columns (a suite's), else every dataset in ``part``. Only encoders with a number in every column are ranked.
    ``eshort``: each encoder label's short form, made once for the whole board so that one short name means one
    encoder in every table (default: made over ``part``)."""
    labels = list(datasets) if datasets is not None else sorted(part["dataset"].unique())
    first = part.drop_duplicates("dataset").set_index("dataset")
    dnames = {d: str(first["dataset_name"].get(d, d)) for d in labels}
    dshort = short_labels(labels, dnames)
    columns = [Column(dshort[d], d, _int(first["classes"].get(d)), _int(first["n_test"].get(d))) for d in labels]
    encoders = sorted(part["encoder"].unique())
    if eshort is None:
        eshort = short_labels(encoders, dict(zip(part["encoder"], part["encoder_name"], strict=True)))
    cells = {(e, d): _cell(g) for (e, d), g in part.groupby(["encoder", "dataset"])}
    rows = {e: Row(eshort[e], e, {dshort[d]: cells[(e, d)] for d in labels if (e, d) in cells}) for e in encoders}
    for row in rows.values():
        row.missing = [c.key for c in columns if row.cells.get(c.key, BoardCell(None)).value is None]
    complete = [e for e in encoders if not rows[e].missing]
    higher = bool(part["higher_is_better"].all()) if not part.empty else True
    scores = pd.DataFrame({d: [cells[(e, d)].value / 100 for e in complete] for d in labels}, index=complete)  # type: ignore[operator]
    floor, floor_note = _floor(part, columns, baseline, scores)
    unusable: list[Column] = []
    if floor is not None and not floor_note.startswith("baseline "):  # chance of a 1-class dataset is 100%
        unusable = [c for c in columns if not floor.get(c.label, float("nan")) < 1.0]
    if unusable:
        usable = [c.label for c in columns if c not in unusable]
        floor_note += (f"; {', '.join(c.key for c in unusable)} left out of the normalised score (fewer than 2 "
                       "classes: no chance level below 100%)")
    try:
        table_agg = agg.aggregate(scores, None if unusable else floor, higher)
        if unusable and usable and floor is not None and not scores.empty:
            table_agg["normalized"] = agg.normalized(scores[usable], floor[usable])
    except ValueError as exc:  # a baseline already at the ceiling leaves nothing to normalise against
        raise OptionError(f"--baseline {baseline}: {exc} in the {protocol} ({modality}) table; pick a weaker "
                          "baseline or drop --baseline (chance is the floor then)") from None
    for e in complete:
        a = table_agg.loc[e]
        rows[e].mean, rows[e].mean_rank = float(a["mean"]) * 100, float(a["mean_rank"])
        rows[e].borda, rows[e].borda_rank = float(a["borda"]), int(a["borda_rank"])
        rows[e].normalized = None if pd.isna(a["normalized"]) else float(a["normalized"]) * 100
    _mark_best(rows.values(), columns, higher)
    ranked = [rows[e] for e in agg.order(table_agg, ranked_by, higher)] if complete else []
    metric = str(part["metric"].iloc[0]) if not part.empty else "top1"
    return Table(protocol, modality, metric, columns, ranked, [rows[e] for e in encoders if rows[e].missing],
                 ranked_by, floor_note, higher)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _mark_best(rows: Iterable[Row], columns: list[Column], higher: bool) -> None:
    rows = list(rows)
    for c in columns:
        values = [v for r in rows if c.key in r.cells and (v := r.cells[c.key].value) is not None]
        if not values:
            continue
        best = max(values) if higher else min(values)
        for r in rows:
            cell = r.cells.get(c.key)
            if cell is not None and cell.value is not None and round(cell.value, 1) == round(best, 1):
                cell.best = True  # what the table shows: a tie at the shown precision is a tie


# --- the whole board ---------------------------------------------------------------------------------------------
def build_board(records: Iterable[Record], throughput: Iterable[ThroughputRecord] = (), *,
                protocols: Sequence[str] | None = None, modalities: Sequence[str] | None = None,
                baseline: str | None = None, suite: ResolvedSuite | None = None,
                ranked_by: str | None = None) -> Board:
    """Every table of the board: one per (protocol, modality), in protocol then modality order, filtered by
    ``protocols`` / ``modalities`` (labels); ``suite`` keeps only its cells and fixes the columns; ``baseline``
    (an encoder label or name) is the normalisation floor where it has every cell (else chance); ``ranked_by``
    defaults to the suite's aggregation, else Borda. Raises :class:`OptionError` for a baseline no record has."""
    frame = cells_frame(records)
    by = ranked_by or (suite.spec.aggregation if suite else "borda")
    base = _baseline_label(frame, baseline or (suite.spec.baseline if suite else None))
    lacking: dict[str, list[str]] = {}
    if suite is not None:
        keys = set(suite.cells)
        inside = [(m, d, p) in keys for m, d, p in zip(frame["modality"], frame["dataset"], frame["protocol"],
                                                        strict=True)]
        frame = frame[inside] if len(frame) else frame
        for e in sorted(frame["encoder"].unique()):
            mine = frame[(frame["encoder"] == e) & (frame["status"] == "ok")]
            have = set(zip(mine["modality"], mine["dataset"], mine["protocol"], strict=True))
            own_modality = set(mine["modality"]) or set(frame[frame["encoder"] == e]["modality"])
            lacking[e] = [f"{d} x {p}" for m, d, p in suite.cells if (m, d, p) not in have and m in own_modality]
        lacking = {e: v for e, v in lacking.items() if v}
    groups = [(p, m) for p, m in _groups(frame, suite)
              if not (protocols and p not in protocols) and not (modalities and m not in modalities)]
    shown = frame[[(p, m) in set(groups) for p, m in zip(frame["protocol"], frame["modality"], strict=True)]] \
        if len(frame) else frame
    eshort = short_labels(sorted(shown["encoder"].unique()),
                          dict(zip(shown["encoder"], shown["encoder_name"], strict=True)))
    tables = []
    for protocol, modality in groups:
        part = frame[(frame["protocol"] == protocol) & (frame["modality"] == modality)]
        datasets = None if suite is None else [d for m, d, p in suite.cells if (m, p) == (modality, protocol)]
        tables.append(build_table(part, protocol, modality, datasets=datasets, ranked_by=by, baseline=base,
                                  eshort=eshort))
    speed = throughput_rows(throughput)
    kinds = kind_means(shown) if len(set(shown["kind"])) > 1 else []  # one kind: the tables say it all
    return Board(tables, speed, quality_vs_throughput(tables, speed),
                 None if suite is None else {**suite.tag(), "plugin": suite.plugin, "aggregation": by}, lacking,
                 kinds)


def _groups(frame: pd.DataFrame, suite: ResolvedSuite | None) -> list[tuple[str, str]]:
    if suite is not None:  # the suite's order, only groups someone has a record in
        present = set(zip(frame["protocol"], frame["modality"], strict=True))
        return list(dict.fromkeys((p, m) for m, _, p in suite.cells if (p, m) in present))
    first = {p: i for i, p in enumerate(PROTOCOL_ORDER)}
    return sorted(set(zip(frame["protocol"], frame["modality"], strict=True)),
                  key=lambda pm: (first.get(pm[0], len(first)), pm[0], pm[1]))


def _baseline_label(frame: pd.DataFrame, baseline: str | None) -> str | None:
    if baseline is None:
        return None
    if baseline in set(frame["encoder"]):
        return baseline
    by_name = sorted(set(frame.loc[frame["encoder_name"] == baseline, "encoder"]))
    if len(by_name) == 1:
        return by_name[0]
    if by_name:
        raise OptionError(f"--baseline {baseline!r} names several encoders ({', '.join(by_name)}); give one label")
    raise OptionError(f"--baseline {baseline!r}: no record has that encoder; use one of the encoder labels the "
                      f"tables show")
