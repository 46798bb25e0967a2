"""The result record: one versioned JSON object per cell, as a typed dataclass family with its validation.

:class:`Record` is the one definition of the schema (version :data:`SCHEMA_VERSION`). ``Record.from_json``
checks a loaded object field by field and raises :class:`InvalidRecord` (a :class:`RecordError`) naming the
file and the dotted field (``"r.json: field 'metrics.top1' must be a number in [0, 1], got 'abc'"``);
``to_json`` gives the object back. Keys a block does not know (what plugins put in their ``info``) are kept in
its ``extra`` dict and the original key order in ``keys``, so ``Record.from_json(d).to_json() == d``, key order
included. :func:`make_record` builds a new record for the runner through the same validation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Literal, NoReturn, TypeVar, cast

from benchmark.errors import RecordError
from benchmark.storage.digest import digest

SCHEMA_VERSION = 1
REQUIRED_FIELDS = ("schema_version", "id", "status", "encoder", "dataset", "protocol", "metrics", "seed",
                   "timings", "environment", "error")
STATUSES = ("ok", "error")
Status = Literal["ok", "error"]

#: Metrics that are fractions of test examples (top-k accuracies): their values must lie in [0, 1].
FRACTION_METRIC = re.compile(r"(?:val_)?top\d+(?:@.+)?")


class InvalidRecord(RecordError):
    """A record that breaks the schema: ``where`` (the file) and ``reason`` (the field at fault, what it got)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where, self.reason = where, reason


def cell_id(encoder: str, dataset: str, protocol: str, seed: int) -> str:
    """A stable id for a cell from the canonical labels (name plus non-default options) and the seed."""
    return digest({"e": encoder, "d": dataset, "p": protocol, "s": seed}, 12)


def now_iso() -> str:
    """The current UTC time as ISO 8601 to the second (``created_at``)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --- reading fields by type ------------------------------------------------------------------------------------
#: Integers a record holds (counts, sizes, seeds) fit in 63 bits.
MAX_INT = 2**63 - 1
#: Numbers a record holds (scores, seconds) stay far below this; larger ones are garbage that breaks arithmetic
#: (a percent of 1e308 is inf) and rendering.
MAX_ABS_NUMBER = 1e15


def is_int(v: Any) -> bool:
    """An integer in [-2**63+1, 2**63-1] (bools are not integers here)."""
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_INT <= v <= MAX_INT


def is_finite(v: Any) -> bool:
    """A finite JSON number, an integer within 63 bits (no ``math.isfinite`` of a 400-digit integer: it
    overflows); bools are not numbers here. Throughput records (FLOP/s beyond 1e15) read numbers with it."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return -MAX_INT <= v <= MAX_INT if isinstance(v, int) else math.isfinite(v)


def is_number(v: Any) -> bool:
    """A finite JSON number of magnitude at most :data:`MAX_ABS_NUMBER` (bools are not numbers here)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if isinstance(v, int):  # no float() of a 400-digit integer (OverflowError)
        return -MAX_ABS_NUMBER <= v <= MAX_ABS_NUMBER
    return math.isfinite(v) and abs(v) <= MAX_ABS_NUMBER


FIELD_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (is_int, "an integer"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "number": (is_number, "a finite number"),  # within +-MAX_ABS_NUMBER
    "object": (lambda v: isinstance(v, Mapping), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_UNSET: Any = object()


class Reader:
    """One JSON object being read: each check failure names ``where`` and the dotted field."""

    def __init__(self, data: Any, where: str, path: str = "", what: str = "a record") -> None:
        if not isinstance(data, Mapping):
            raise InvalidRecord(where, f"field {path!r} must be an object, got {_show(data)}" if path
                                else f"{what} must be a JSON object")
        self.data: Mapping[str, Any] = data
        self.where, self.path = where, path

    def dotted(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def fail(self, key: str, expected: str, value: Any = _UNSET) -> NoReturn:
        """Raise: ``key``'s ``value`` (default: the value under ``key``) is not ``expected``."""
        shown = self.data.get(key) if value is _UNSET else value
        raise InvalidRecord(self.where, f"field {self.dotted(key)!r} must be {expected}, got {_show(shown)}")

    def need(self, key: str, ok: bool, expected: str) -> Any:
        """The value under ``key``, which must be present and pass ``ok`` (else a failure saying ``expected``)."""
        if key not in self.data:
            raise InvalidRecord(self.where, f"missing field {self.dotted(key)!r}")
        if not ok:
            self.fail(key, expected)
        return self.data[key]

    def get(self, key: str, kind: str, *, required: bool = False, nullable: bool = False) -> Any:
        """The value of ``key`` checked against ``kind`` (a key of :data:`FIELD_KINDS`); None when absent (and not
        required) or null (and ``nullable``). Objects come back as plain dicts."""
        if key not in self.data:
            if required:
                raise InvalidRecord(self.where, f"missing field {self.dotted(key)!r}")
            return None
        value = self.data[key]
        if value is None and nullable:
            return None
        check, expected = FIELD_KINDS[kind]
        if not check(value):
            self.fail(key, expected + (" or null" if nullable else ""), value)
        return dict(value) if kind == "object" else value

    def sub(self, key: str) -> Reader:
        """A reader for the object under ``key`` (which must be present)."""
        return Reader(self.data[key], self.where, self.dotted(key))


def _field(kind: str, *, required: bool = False, nullable: bool = False) -> Any:
    """A dataclass field read by :meth:`_Block.from_json` as ``kind``; optional ones default to None (absent)."""
    meta = {"kind": kind, "required": required, "nullable": nullable}
    return field(metadata=meta) if required else field(default=None, metadata=meta)


B = TypeVar("B", bound="_Block")


@dataclass(frozen=True, kw_only=True)
class _Block:
    """A JSON object with typed fields (declared with :func:`_field`), unknown keys in ``extra`` and the key
    order it was read with in ``keys`` (so :meth:`to_json` gives back the same object, in the same order)."""

    extra: dict[str, Any] = field(default_factory=dict)
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def typed_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if "kind" in f.metadata)

    @classmethod
    def from_json(cls: type[B], data: Any, where: str, path: str) -> B:
        """Read ``data`` (the object at dotted ``path`` in file ``where``); raise :class:`InvalidRecord`."""
        reader = Reader(data, where, path)
        return cls(**cls._read(reader), extra=cls._extra(reader.data), keys=tuple(reader.data))

    @classmethod
    def _read(cls, reader: Reader) -> dict[str, Any]:
        """The typed fields whose kind :class:`Reader` checks (``custom`` ones are read by the subclass)."""
        return {f.name: reader.get(f.name, f.metadata["kind"], required=f.metadata["required"],
                                   nullable=f.metadata["nullable"])
                for f in fields(cls) if f.metadata.get("kind") not in (None, "custom")}

    @classmethod
    def _extra(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        typed = set(cls.typed_names())
        return {k: v for k, v in data.items() if k not in typed}

    def to_json(self) -> dict[str, Any]:
        """The JSON object: keys in ``keys`` order first, then required or set typed fields, then ``extra``.
        Nested values are shared with the block, not copied."""
        typed = {f.name: (getattr(self, f.name), f.metadata["required"]) for f in fields(self) if "kind" in f.metadata}
        out: dict[str, Any] = {}
        for key in self.keys:
            if key in typed:
                out[key] = typed[key][0]
            elif key in self.extra:
                out[key] = self.extra[key]
        for key, (value, required) in typed.items():
            if key not in out and (required or value is not None):
                out[key] = value
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return {k: v.to_json() if isinstance(v, _Block) else v for k, v in out.items()}


@dataclass(frozen=True, kw_only=True)
class _Named(_Block):
    name: str = _field("str", required=True)
    label: str | None = _field("str")  # name plus non-default options; records always have it, old tests not
    plugin: str | None = _field("str")

    @property
    def display(self) -> str:
        """What tables show: the label, else the name."""
        return self.label if self.label is not None else self.name


@dataclass(frozen=True, kw_only=True)
class EncoderBlock(_Named):
    """``encoder``: the plugin's ``info`` (in ``extra``, except the typed keys below) plus the harness's ids."""

    modality: str | None = _field("str")
    options: dict[str, Any] | None = _field("object")
    weights: str | None = _field("str", nullable=True)
    embed_dim: int | None = _field("int", nullable=True)
    params: int | None = _field("int", nullable=True)


@dataclass(frozen=True, kw_only=True)
class DatasetBlock(_Named):
    """``dataset``: the plugin's ``info`` (source, split sizes, ... in ``extra``) plus the harness's ids."""

    modality: str | None = _field("str")
    options: dict[str, Any] | None = _field("object")
    classes: list[Any] | None = _field("list")


@dataclass(frozen=True, kw_only=True)
class ProtocolBlock(_Named):
    """``protocol``: its options, what it chose on validation data, and which metric tables show."""

    hyperparameters: dict[str, Any] | None = _field("object")
    chosen: dict[str, Any] | None = _field("object")
    primary_metric: str | None = _field("str")
    higher_is_better: bool | None = _field("bool")

    @property
    def metric(self) -> str:
        """The primary metric's name (``top1`` when the record does not say)."""
        return self.primary_metric if self.primary_metric is not None else "top1"


@dataclass(frozen=True, kw_only=True)
class ErrorBlock(_Block):
    """``error`` of a failed cell: the exception's type, message and (truncated) traceback."""

    type: str = _field("str", required=True)
    message: str = _field("str", required=True)
    traceback: str | None = _field("str")


def _check_fraction_ci(reader: Reader, key: str, lo: float, hi: float) -> None:
    # a Student t interval (few-shot) may cross 0 or 1 a little; garbage (percent, -5, 1e308) does not fit
    if lo > 1 or hi < 0 or hi - lo > 1:
        reader.fail(key, "an interval [low, high] overlapping [0, 1], at most 1 wide", [lo, hi])


def _check_ci(reader: Reader, key: str, fraction: bool) -> None:
    """``<metric>_ci95``: null, or [low, high] (finite numbers or both null) with low <= high."""
    value = reader.data[key]
    if value is None:
        return
    if not (isinstance(value, list) and len(value) == 2 and all(v is None or is_number(v) for v in value)):
        reader.fail(key, "a pair [low, high] of finite numbers", value)
    lo, hi = value
    if lo is None or hi is None:
        if lo is not hi:
            reader.fail(key, "a pair [low, high] of finite numbers", value)
        return
    if lo > hi:
        reader.fail(key, "a pair [low, high] with low <= high", value)
    if fraction:
        _check_fraction_ci(reader, key, lo, hi)


def check_metrics(reader: Reader, primary: str) -> dict[str, Any]:
    """Check the metrics the tables read: top-k fractions in [0, 1], the primary metric a finite number, their
    ``_ci95`` intervals, ``n_test`` a count. Each may be null (the runner writes NaN as null). Other metrics
    are free-form."""
    if primary.endswith("_ci95"):
        raise InvalidRecord(reader.where, f"field 'protocol.primary_metric' must name a numeric metric, got "
                                          f"{_show(primary)} (an interval)")
    for key, value in reader.data.items():
        base = key[: -len("_ci95")] if key.endswith("_ci95") else None
        if base is not None and (base == primary or FRACTION_METRIC.fullmatch(base)):
            _check_ci(reader, key, fraction=bool(FRACTION_METRIC.fullmatch(base)))
        elif value is None:
            continue
        elif FRACTION_METRIC.fullmatch(key):
            if not (is_number(value) and 0 <= value <= 1):
                reader.fail(key, "a number in [0, 1]", value)
        elif key == primary and not is_number(value):
            reader.fail(key, "a finite number", value)
        elif key == "n_test" and not (is_int(value) and value >= 0):
            reader.fail(key, "a non-negative integer", value)
    return dict(reader.data)


SOURCES = ("measured", "published")


def _check_source(reader: Reader, source: str | None, provenance: dict[str, Any] | None) -> None:
    """``source`` is one of :data:`SOURCES`; a published record says where it came from (``provenance.file``
    or ``provenance.url``), so an imported number can always be traced back."""
    if source is not None and source not in SOURCES:
        reader.fail("source", " or ".join(map(repr, SOURCES)), source)
    if source == "published" and not (provenance and (provenance.get("file") or provenance.get("url"))):
        reader.fail("provenance", "an object with 'file' or 'url' (source is 'published')", provenance)


@dataclass(frozen=True, kw_only=True)
class Record(_Block):
    """One cell's result (schema version 1). ``metrics``, ``timings`` and ``environment`` are free-form
    beyond the keys :func:`check_metrics` and :meth:`from_json` check."""

    schema_version: int = _field("custom", required=True)
    id: str = _field("str", required=True)
    config_digest: str | None = _field("str")
    created_at: str | None = _field("str")
    status: Status = _field("custom", required=True)
    encoder: EncoderBlock = _field("custom", required=True)
    dataset: DatasetBlock = _field("custom", required=True)
    protocol: ProtocolBlock = _field("custom", required=True)
    metrics: dict[str, Any] = _field("custom", required=True)
    seed: int = _field("int", required=True)
    precision: str | None = _field("str")
    timings: dict[str, Any] = _field("object", required=True)
    environment: dict[str, Any] = _field("object", required=True)
    error: ErrorBlock | None = _field("custom", required=True)
    # where the numbers come from: absent means "measured" (this harness ran the cell); "published" records are
    # imported from a peer's results (``repbench import``) and carry ``provenance`` (file, url, format, ...)
    source: str | None = _field("str")
    provenance: dict[str, Any] | None = _field("object")
    suites: list[dict[str, Any]] | None = _field("custom")  # the suites (name, version) the cell was run for

    @classmethod
    def from_json(cls, data: Any, where: str = "record", path: str = "") -> Record:
        """Validate a loaded record (a JSON object) and type it; raise :class:`InvalidRecord` naming ``where``
        and the dotted field at fault."""
        reader = Reader(data, where)
        missing = [f for f in REQUIRED_FIELDS if f not in reader.data]
        if missing:
            raise InvalidRecord(where, f"missing field(s) {', '.join(missing)}; is it a repbench result record?")
        version = reader.data["schema_version"]
        if not is_int(version) or version != SCHEMA_VERSION:
            raise InvalidRecord(where, f"schema_version {version!r} is not supported (this repbench reads "
                                       f"{SCHEMA_VERSION}); upgrade repbench or rerun the cell")
        status = reader.data["status"]
        if status not in STATUSES:
            reader.fail("status", "'ok' or 'error'", status)
        protocol = ProtocolBlock.from_json(reader.data["protocol"], where, "protocol")
        encoder = EncoderBlock.from_json(reader.data["encoder"], where, "encoder")
        dataset = DatasetBlock.from_json(reader.data["dataset"], where, "dataset")
        metrics = check_metrics(reader.sub("metrics"), protocol.metric)
        error = reader.data["error"]
        typed = cls._read(reader)
        total = typed["timings"].get("total_s")
        if total is not None and not is_number(total):
            reader.sub("timings").fail("total_s", "a finite number or null", total)
        _check_source(reader, typed["source"], typed["provenance"])
        typed["suites"] = check_suites(reader)
        return cls(**typed, encoder=encoder, dataset=dataset, protocol=protocol, schema_version=version, status=status, metrics=metrics,
                   error=None if error is None else ErrorBlock.from_json(error, where, "error"),
                   extra=cls._extra(reader.data), keys=tuple(reader.data))

    @property
    def metric(self) -> str:
        """The primary metric's name."""
        return self.protocol.metric

    @property
    def value(self) -> Any:
        """The primary metric's value (a number, or None when missing or not finite)."""
        return self.metrics.get(self.metric)

    @property
    def ci(self) -> tuple[Any, Any]:
        """The primary metric's 95% interval (low, high), (None, None) when the record has none."""
        pair = self.metrics.get(f"{self.metric}_ci95") or (None, None)
        return pair[0], pair[1]

    @property
    def origin(self) -> str:
        """``"measured"`` (the default: this harness ran the cell) or ``"published"`` (imported)."""
        return self.source if self.source is not None else "measured"

    @property
    def n_test(self) -> Any:
        return self.metrics.get("n_test")

    @property
    def total_s(self) -> Any:
        return self.timings.get("total_s")


def make_record(*, encoder: Mapping[str, Any], dataset: Mapping[str, Any], protocol: Mapping[str, Any],
                metrics: Mapping[str, Any], seed: int, precision: str, timings: Mapping[str, Any],
                environment: Mapping[str, Any], error: Mapping[str, Any] | None, config_digest: str,
                created_at: str | None = None, suites: list[dict[str, Any]] | None = None) -> Record:
    """A new record for one cell, validated exactly like a loaded one.

    The blocks are plain JSON values (apply :func:`benchmark.storage.digest.jsonable` first) and must carry
    ``label``s: the id is :func:`cell_id` of the three labels and ``seed``. ``status`` is ``"error"`` when ``error``
    is given. ``created_at`` defaults to now; ``suites`` (the suites the cell runs for) is written last when given. Raises :class:`InvalidRecord` when a value breaks the schema (a plugin's
    ``top1`` of 85 instead of 0.85, a label that is not a string); the message says which field.
    """
    where = "new record"
    labels = []
    for key, block in (("encoder", encoder), ("dataset", dataset), ("protocol", protocol)):
        label = Reader(block, where, key).get("label", "str", required=True)
        labels.append(label)
    where = f"new record {' x '.join(labels)}"
    data = {
        "schema_version": SCHEMA_VERSION, "id": cell_id(labels[0], labels[1], labels[2], seed),
        "config_digest": config_digest, "created_at": created_at if created_at is not None else now_iso(),
        "status": "ok" if error is None else "error", "encoder": dict(encoder), "dataset": dict(dataset),
        "protocol": dict(protocol), "metrics": dict(metrics), "seed": seed, "precision": precision,
        "timings": dict(timings), "environment": dict(environment), "error": None if error is None else dict(error),
    }
    if suites is not None:
        data["suites"] = [dict(s) for s in suites]
    return Record.from_json(data, where)


def validate(record: Any, where: str) -> dict[str, Any]:
    """Check a loaded record (see :meth:`Record.from_json`) and return it unchanged; raise
    :class:`InvalidRecord` naming ``where`` and the field at fault."""
    Record.from_json(record, where)
    return cast(dict[str, Any], record)


def check_suites(reader: Reader) -> list[dict[str, Any]] | None:
    """``suites`` (optional): a list of ``{"name": "<suite>-v<N>", "version": N}``, the suites the cell was run
    for (a cell can belong to several)."""
    suites = reader.get("suites", "list")
    if suites is None:
        return None
    for i, item in enumerate(suites):
        ok = (isinstance(item, Mapping) and isinstance(item.get("name"), str) and is_int(item.get("version"))
              and str(item["name"]).endswith(f"-v{item['version']}"))
        if not ok:
            reader.fail(f"suites[{i}]", 'an object {"name": "<suite>-v<N>", "version": N}', item)
    return [dict(s) for s in suites]
