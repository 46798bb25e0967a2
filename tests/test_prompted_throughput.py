"""``repbench throughput`` times a prompted (query/document role) text encoder on its inner encoder's synthetic
batches; a prompted encoder whose inner encoder has no ``example_batch`` has none either (a clear error)."""

from __future__ import annotations

import argparse

import pytest

from benchmark.encoders.roles import Prompted
from benchmark.errors import OptionError
from benchmark.results.throughput import read_throughput
from benchmark.specs import ExampleBatch, RoleAware
from benchmark.testing import catalog_with
from benchmark.throughput import cli as tp_cli
from benchmark.throughput.measure import require_example_batch
from tests.test_roles import CharCounts
from tests.test_throughput import tiny_bert  # noqa: F401  (a fixture)


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="repbench")
    tp_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["throughput", *argv])


def test_throughput_of_a_prompted_text_encoder_spec(tiny_bert, tmp_path, capsys) -> None:  # noqa: F811
    spec = f"hf/{tiny_bert}[query_prompt=query:,document_prompt=passage:]"
    enc = catalog_with().resolve("encoders", spec).load()
    assert isinstance(enc, RoleAware) and isinstance(enc, ExampleBatch)
    batch = enc.example_batch(3, seq_len=8)
    assert batch["input_ids"].shape == (3, 8)
    args = _args("-e", spec, "--batch-size", "2", "--seq-len", "8", "--warmup", "1", "--rounds", "2", "--device",
                 "cpu", "--no-matmul-peak", "--in-process", "--results", str(tmp_path), "-q")
    assert args.func(args) == 0
    capsys.readouterr()
    (path,) = tmp_path.glob("throughput__*.json")
    record = read_throughput(path)
    assert record.status == "ok" and record.batch_size == 2 and record.metrics["samples_per_s"] > 0
    assert record.metrics["tokens_per_s"] == pytest.approx(8 * record.metrics["samples_per_s"])


def test_a_prompted_encoder_without_an_inner_example_batch_cannot_be_timed() -> None:
    enc = Prompted(CharCounts(), "query:", "passage:")
    assert not isinstance(enc, ExampleBatch)
    with pytest.raises(OptionError, match="encoder 'prompted' cannot be timed: it has no example_batch"):
        require_example_batch(enc, "prompted")
