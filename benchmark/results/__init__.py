"""Results: the typed record, its validation, the store (a folder of JSON records) and the environment block."""

from benchmark.results.environment import environment, git_sha
from benchmark.results.record import (
    SCHEMA_VERSION,
    DatasetBlock,
    EncoderBlock,
    ErrorBlock,
    InvalidRecord,
    ProtocolBlock,
    Record,
    cell_id,
    make_record,
    now_iso,
    validate,
)
from benchmark.results.store import (
    ResultStore,
    Scan,
    load_records,
    read_record,
    record_filename,
    scan_records,
)

__all__ = ["SCHEMA_VERSION", "DatasetBlock", "EncoderBlock", "ErrorBlock", "InvalidRecord", "ProtocolBlock",
           "Record", "ResultStore", "Scan", "cell_id", "environment", "git_sha", "load_records", "make_record",
           "now_iso", "read_record", "record_filename", "scan_records", "validate"]
