"""The worker process of ``repbench throughput``: ``python -m benchmark.throughput.worker JOB OUT``.

``JOB`` is a JSON file ``{"encoder": "<spec string>", "settings": {...ThroughputSettings...}}``. The worker loads the
installed plugins, measures that one encoder (:func:`~benchmark.throughput.run.measure_spec`) and writes
``OUT``: ``{"records": [<throughput record>, ...]}``, or ``{"failure": {"type", "message", "traceback"}}``
when the encoder cannot be measured at all (no ``example_batch``, weights unavailable). It exits 0 either way;
any other exit status means it crashed. Progress goes to stderr, a line per cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmark.errors import ExitCode
from benchmark.storage.atomic import write_json


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m benchmark.throughput.worker JOB.json OUT.json", file=sys.stderr)
        return ExitCode.USAGE
    job = json.loads(Path(args[0]).read_text())
    from benchmark.catalog import Catalog
    from benchmark.throughput.measure import ThroughputSettings
    from benchmark.throughput.run import failure_of, measure_spec

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        catalog = Catalog.load()
        for err in catalog.errors:
            log(err.message())
        records = measure_spec(catalog, job["encoder"], ThroughputSettings.from_json(job["settings"]), log=log)
        out: dict[str, object] = {"records": [r.to_json() for r in records]}
    except Exception as exc:
        f = failure_of(job["encoder"], exc)
        out = {"failure": {"type": f.type, "message": f.message, "traceback": f.traceback}}
    write_json(Path(args[1]), out)
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
