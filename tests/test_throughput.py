"""``repbench throughput``: the timing method on a fake clock and device, FLOP counts of known layers, out of
memory recorded as asked, the record's round trip and validation, peaks, and the worker-process path."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from benchmark.errors import OptionError, RecordError
from benchmark.results.record import InvalidRecord
from benchmark.results.store import record_filename
from benchmark.results.throughput import (
    ThroughputRecord,
    is_throughput,
    read_throughput,
    throughput_filename,
    write_throughput,
)
from benchmark.runtime.devices import is_oom
from benchmark.testing import catalog_with
from benchmark.throughput import ThroughputSettings, measure_encoder, run_throughput, time_steps
from benchmark.throughput import cli as tp_cli
from benchmark.throughput.flops import count_flops
from benchmark.throughput.measure import Measurement, run_cell
from benchmark.throughput.peaks import measured_matmul_peak, spec_peak
from benchmark.throughput.run import cell_record
from benchmark.throughput.timing import Timing

TINY_TIMM = "timm/resnet18[pretrained=false,img_size=32]"


class FakeDevice:
    """A clock that only moves when a step runs (by the next of ``durations``), and a log of steps and syncs."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = iter(durations)
        self.log: list[str] = []

    def clock(self) -> float:
        return self.now

    def step(self) -> None:
        self.now += next(self.durations)
        self.log.append("step")

    def sync(self) -> None:
        self.log.append("sync")


# --- timing -----------------------------------------------------------------------------------------------------
def test_warmup_is_excluded_and_each_round_is_synchronised() -> None:
    dev = FakeDevice([100.0, 50.0, 1.0, 3.0, 2.0, 5.0, 4.0])
    t = time_steps(dev.step, batch_size=8, warmup=2, rounds=5, steps_per_round=1, sync=dev.sync, clock=dev.clock)
    assert t.round_s == (1.0, 3.0, 2.0, 5.0, 4.0)  # the 100 s and 50 s warm-up steps are not in any round
    assert t.first_step_s == 100.0 and t.warmup == 2
    assert dev.log == ["sync", "step", "sync"] * 7  # sync before and after every warm-up step and round
    assert (t.median_s, t.min_s, t.max_s, t.quartiles_s) == (3.0, 1.0, 5.0, (2.0, 4.0))
    m = t.metrics()
    assert m["samples_per_s"] == pytest.approx(8 / 3) and m["ms_per_batch"] == pytest.approx(3000.0)
    assert (m["samples_per_s_min"], m["samples_per_s_max"]) == pytest.approx((8 / 5, 8 / 1))


def test_several_steps_per_round_give_seconds_per_batch() -> None:
    dev = FakeDevice([1.0, 1.0, 2.0, 2.0])
    t = time_steps(dev.step, batch_size=4, warmup=0, rounds=2, steps_per_round=2, sync=dev.sync, clock=dev.clock)
    assert t.round_s == (1.0, 2.0) and t.first_step_s is None
    assert dev.log == ["sync", "step", "step", "sync"] * 2
    assert Timing(4, 0, 2, (1.0, 2.0)).median_s == 1.5


def test_auto_steps_per_round_from_the_fastest_warmup_step() -> None:
    dev = FakeDevice([9.0, 0.01, 0.02] + [0.01] * 20 * 3)
    t = time_steps(dev.step, batch_size=1, warmup=3, rounds=3, steps_per_round=None, sync=dev.sync,
                   clock=dev.clock, target_round_s=0.2)
    assert t.steps_per_round == 20  # 0.2 s / 0.01 s; the first (compiling) warm-up step is ignored
    assert t.median_s == pytest.approx(0.01)


# --- FLOPs --------------------------------------------------------------------------------------------------------
def test_flops_of_a_linear_layer() -> None:
    count = count_flops(torch.nn.Linear(64, 32), torch.randn(8, 64))
    assert count.total == 2 * 8 * 64 * 32 and count.uncounted == []


def test_flops_of_a_convolution_and_the_uncounted_ops() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1, bias=False), torch.nn.ReLU())
    count = count_flops(model, torch.randn(2, 3, 8, 8))
    assert count.total == 2 * (2 * 16 * 8 * 8) * (3 * 3 * 3)  # 2 x outputs x multiply-adds per output
    assert count.uncounted == ["aten.relu"]


# --- out of memory ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                                   MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory")])
def test_out_of_memory_is_recorded_at_the_batch_size_asked(error: BaseException) -> None:
    def step() -> None:
        raise error

    cell = Measurement("ok", 256, "fp32", "fp32")
    assert run_cell(step, cell, ThroughputSettings(batch_sizes=(256,), warmup=1, rounds=2)) is None
    assert (cell.status, cell.batch_size, cell.error["type"]) == ("oom", 256, type(error).__name__)


def test_other_errors_are_errors_not_oom() -> None:
    assert not is_oom(RuntimeError("shapes cannot be multiplied"))
    cell = Measurement("ok", 2, "fp32", "fp32")
    run_cell(lambda: 1 / 0, cell, ThroughputSettings(batch_sizes=(2,), warmup=0, rounds=1))
    assert cell.status == "error" and cell.error["type"] == "ZeroDivisionError"


class GreedyEncoder(torch.nn.Module):
    """A linear encoder that runs out of memory for batches above 4, and remembers every batch it saw."""

    modality = "image"

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(16, 8)
        self.seen: list[int] = []

    def example_batch(self, batch_size: int, *, seq_len: int | None = None, device: str = "cpu") -> torch.Tensor:
        return torch.randn(batch_size, 16, device=device)

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        self.seen.append(len(batch))
        if len(batch) > 4:
            raise MemoryError("no room for this batch")
        return self.linear(batch)


def test_an_oom_batch_size_is_never_shrunk() -> None:
    enc = GreedyEncoder()
    settings = ThroughputSettings(batch_sizes=(8, 2), warmup=1, rounds=2, steps_per_round=1, matmul_peak=False)
    cells, notes = measure_encoder(enc, settings)
    assert [(c.batch_size, c.status) for c in cells] == [(2, "ok"), (8, "oom")]
    assert set(enc.seen) == {2, 8}  # nothing in between was tried
    ok = cells[0].metrics
    assert ok["flops_per_sample"] == 2 * 16 * 8 and ok["achieved_flops_per_s"] > 0 and ok["peak_memory_bytes"] > 0
    assert notes == []


def test_settings_are_checked() -> None:
    with pytest.raises(OptionError, match="--compile needs --warmup"):
        ThroughputSettings(compile=True, warmup=0)
    with pytest.raises(OptionError, match="--precision"):
        ThroughputSettings(precisions=("fp8",))
    assert ThroughputSettings(batch_sizes=(32, 1, 32)).batch_sizes == (1, 32)
    assert ThroughputSettings.from_json(ThroughputSettings(seq_len=7).to_json()) == ThroughputSettings(seq_len=7)


# --- peaks ----------------------------------------------------------------------------------------------------------
def test_spec_sheet_peaks_by_device_name() -> None:
    assert spec_peak("NVIDIA H100 80GB HBM3", "bf16")[0] == pytest.approx(989.5e12)
    assert spec_peak("NVIDIA H200", "fp16")[0] == pytest.approx(989.5e12)
    assert spec_peak("NVIDIA A100-SXM4-40GB", "bf16")[0] == pytest.approx(312e12)
    assert spec_peak("NVIDIA GeForce RTX 4090", "bf16")[0] == pytest.approx(165.2e12)
    assert spec_peak("NVIDIA L4", "bf16")[0] == pytest.approx(121e12)
    assert spec_peak("NVIDIA L40", "bf16")[0] is None  # not the L4
    assert spec_peak("Tesla T4", "bf16")[0] is None and spec_peak("Tesla T4", "fp16")[0] == pytest.approx(65e12)
    assert spec_peak("x86_64", "fp32", "cpu") == (None, "no spec-sheet peak for CPUs")


def test_measured_matmul_peak_is_positive() -> None:
    flops, n = measured_matmul_peak("cpu", "fp32", budget_s=0.01, n_max=256)
    assert flops > 0 and n == 256


# --- records ----------------------------------------------------------------------------------------------------
def _record(status: str = "ok") -> ThroughputRecord:
    settings = ThroughputSettings(batch_sizes=(8,), warmup=1, rounds=3)
    cell = Measurement(status, 8, "bf16", "autocast(cpu, bfloat16)", input_shapes={"x": [8, 3, 32, 32]})
    if status == "ok":
        cell.timing = Timing(8, 1, 1, (0.1, 0.2, 0.3))
        cell.metrics = dict(cell.timing.metrics(), flops_uncounted="unknown", peak_memory_bytes=10)
    else:
        cell.error = {"type": "OutOfMemoryError", "message": "CUDA out of memory"}
    block = {"name": "timm/resnet18", "label": "timm/resnet18[pretrained=false]", "params": 11}
    return cell_record(cell, block=block, settings=settings, device_name="x86_64", environment={"torch": "x"})


@pytest.mark.parametrize("status", ["ok", "oom"])
def test_record_round_trip_through_a_file(tmp_path, status: str) -> None:
    record = _record(status)
    assert ThroughputRecord.from_json(record.to_json()).to_json() == record.to_json()
    path = write_throughput(tmp_path, record)
    assert path.name == throughput_filename(record)
    assert path.name.startswith("throughput__timm-resnet18-pretrained-false__cpu__bf16__b8__")
    assert read_throughput(path) == record and is_throughput(json.loads(path.read_text()))
    assert path.name != record_filename(record.label, "cpu", "bf16", 8)  # never an evaluation record's name


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.update(batch_size=0), "'batch_size'"),
    (lambda d: d["timing"].update(round_s=[]), "'timing.round_s'"),
    (lambda d: d["metrics"].pop("samples_per_s"), "'metrics.samples_per_s'"),
    (lambda d: d["metrics"].update(tokens_per_s="fast"), "'metrics.tokens_per_s'"),
    (lambda d: d["encoder"].pop("label"), "'encoder.label'"),
    (lambda d: d.update(precision="fp8"), "'precision'"),
    (lambda d: d.pop("kind"), "'kind'"),
    (lambda d: d.update(status="oom"), "'error'"),
])
def test_validation_names_the_file_and_the_field(tmp_path, change, field: str) -> None:
    data = _record().to_json()
    change(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidRecord) as info:
        read_throughput(path)
    assert str(path) in str(info.value) and field in str(info.value)
    assert isinstance(info.value, RecordError)


# --- text -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A randomly initialised 2-layer BERT with a small WordPiece vocabulary, saved as a local folder."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert-throughput")
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=7, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    BertModel(cfg).eval().save_pretrained(folder, safe_serialization=True)
    return str(folder)


def test_text_encoder_tokens_per_second(tiny_bert: str) -> None:
    enc = catalog_with().resolve("encoders", f"hf/{tiny_bert}").load()
    batch = enc.example_batch(3, seq_len=16)
    assert batch["input_ids"].shape == (3, 16) and bool(batch["attention_mask"].all())
    with pytest.raises(OptionError, match="seq_len"):
        enc.example_batch(1, seq_len=33)
    cells, _ = measure_encoder(enc, ThroughputSettings(batch_sizes=(2,), seq_len=8, warmup=1, rounds=2, steps_per_round=1,
                                             matmul_peak=False))
    m = cells[0].metrics
    assert cells[0].seq_len == 8 and m["tokens_per_s"] == pytest.approx(16 * m["samples_per_s"] / 2)
    assert m["flops_per_sample"] > 0


# --- the command --------------------------------------------------------------------------------------------------
def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="repbench")
    tp_cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["throughput", *argv])


def test_command_in_process_prints_the_table_and_writes_records(tmp_path, capsys) -> None:
    args = _args("-e", TINY_TIMM, "--batch-size", "2", "--warmup", "1", "--rounds", "2", "--device", "cpu",
                 "--no-matmul-peak", "--in-process", "--results", str(tmp_path), "-q")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "| encoder" in out and "timm/resnet18[img_size=32,pretrained=false]" in out
    (path,) = tmp_path.glob("throughput__*.json")
    record = read_throughput(path)
    assert record.status == "ok" and record.batch_size == 2 and record.timing["rounds"] == 2
    assert record.metrics["params"] == 11176512 and record.environment["device"] == "cpu"


def test_encoder_without_example_batch_is_a_clear_error(tmp_path) -> None:
    args = _args("-e", "pixels", "--in-process", "--results", str(tmp_path), "-q")
    with pytest.raises(OptionError, match="encoder 'pixels' cannot be timed: it has no example_batch"):
        args.func(args)


def test_worker_process_reports_the_missing_example_batch() -> None:
    run = run_throughput(catalog_with(), ["pixels"], ThroughputSettings(batch_sizes=(2,)), results_dir=None)
    (failure,) = run.failures
    assert failure.type == "OptionError" and "'pixels'" in failure.message and "example_batch" in failure.message


@pytest.mark.slow
def test_worker_process_measures_a_tiny_timm_model(tmp_path) -> None:
    settings = ThroughputSettings(batch_sizes=(2,), warmup=1, rounds=2, matmul_peak=False)
    run = run_throughput(catalog_with(), [TINY_TIMM], settings, results_dir=tmp_path)
    assert run.failures == []
    (record,) = run.records
    assert record.status == "ok" and len(record.timing["round_s"]) == 2 and record.metrics["samples_per_s"] > 0
    assert record.metrics["flops_per_sample"] > 0 and record.metrics["peak_memory_bytes"] > 0
    assert read_throughput(run.paths[0]) == record


def test_an_image_encoder_without_input_size_in_its_config_gets_the_shape_its_preprocess_makes() -> None:
    """A plugin's TorchImageEncoder whose preprocess_config says nothing of input_size (the EfficientNet-Lite
    plugin) is timed on batches shaped like its own preprocessed images."""
    from benchmark.encoders import TorchImageEncoder

    def transform(image):
        return torch.zeros(3, 40, 40) + float(image.size[0] > 0)

    enc = TorchImageEncoder(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 40 * 40, 4)), 4,
                            transform, {"img_size": 40, "mode": "RGB"}, weights="random", name="t")
    assert enc.example_batch(5).shape == (5, 3, 40, 40)
