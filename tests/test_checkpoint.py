"""Checkpoints and resume (benchmark.methods.checkpoint, trainer): atomic files without pickle, bit-identical
resume after an in-process pause and after SIGKILL, refusal of another configuration's workdir.

Run as a script (``python tests/test_checkpoint.py WORKDIR OUT [BLOCK_AT]``), this file trains the BYOL-like
tiny method for the kill test and writes the final weights to OUT; with BLOCK_AT it blocks forever in that
forward call, so the test can kill it mid-run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from test_trainer import FakeClock, byol_method, contrastive_method, one_thread, run, tiny_data

from benchmark.errors import OptionError
from benchmark.methods import checkpoint as ckpt
from benchmark.methods.trainer import train
from benchmark.specs import Budget

KILL_BUDGET = Budget(steps=14)
__all__ = ["one_thread"]  # the autouse fixture, shared


def weights(method) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in method.objective.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --- resume ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("optimizer", "pause"), [("sgd", 4), ("lars", 6), ("adamw", 5)])
def test_resume_after_a_pause_is_bit_identical(tmp_path, optimizer, pause):
    data = tiny_data(10)  # batch 4: 2 steps per epoch, so pauses fall mid-epoch and on epoch boundaries
    reference, backbone = byol_method(optimizer=optimizer)
    full = run(reference, backbone, tmp_path / "a", Budget(steps=11), data=data, checkpoint_every_steps=3)

    first, backbone = byol_method(optimizer=optimizer)
    paused = run(first, backbone, tmp_path / "b", Budget(steps=11), data=data, checkpoint_every_steps=3,
                 pause_at_step=pause)
    assert (paused.steps, paused.stopped_by) == (pause, "paused")
    again, backbone = byol_method(seed=99, optimizer=optimizer)  # fresh weights: all must come from the checkpoint
    resumed = run(again, backbone, tmp_path / "b", Budget(steps=11), data=data, checkpoint_every_steps=3)

    assert (resumed.steps, resumed.resumed_from_step, resumed.stopped_by) == (11, pause, "steps")
    assert_same(weights(reference), weights(again))
    assert resumed.loss_curve == full.loss_curve and resumed.lr_curve == full.lr_curve


def test_resume_of_a_seconds_budget_keeps_the_fixed_schedule(tmp_path):
    clock = FakeClock()
    reference, backbone = contrastive_method(clock=clock, step_s=0.5)
    full = run(reference, backbone, tmp_path / "a", Budget(seconds=10.0), clock=clock)
    clock.now = 0.0
    first, backbone = contrastive_method(clock=clock, step_s=0.5)
    run(first, backbone, tmp_path / "b", Budget(seconds=10.0), clock=clock, pause_at_step=8)
    clock.now = 100.0  # the clock of a new process starts anywhere; only training time counts
    again, backbone = contrastive_method(clock=clock, step_s=0.5)
    resumed = run(again, backbone, tmp_path / "b", Budget(seconds=10.0), clock=clock)
    assert (resumed.steps, resumed.estimated_total_steps, resumed.seconds) == (20, 20, pytest.approx(10.0))
    assert_same(weights(reference), weights(again))
    assert resumed.estimate == full.estimate


def test_a_finished_run_is_not_trained_again(tmp_path):
    method, backbone = contrastive_method()
    done = run(method, backbone, tmp_path, Budget(steps=4))
    again, backbone = contrastive_method(seed=5)
    result = run(again, backbone, tmp_path, Budget(steps=4))
    assert again.objective.calls == 0 and (result.steps, result.resumed_from_step) == (4, 4)
    assert result.loss_curve == done.loss_curve and result.stopped_by == "steps"
    assert_same(weights(method), weights(again))


def test_checkpoints_every_n_seconds(tmp_path):
    clock, steps_seen = FakeClock(), []
    method, backbone = contrastive_method(clock=clock, step_s=0.5)

    def on_step(step, total):
        meta = ckpt.read_meta(tmp_path / "work")
        steps_seen.append(None if meta is None else meta["step"])

    method.on_step = on_step
    run(method, backbone, tmp_path, Budget(steps=7), clock=clock, checkpoint_every_s=1.0)
    assert steps_seen == [None, None, 2, 2, 4, 4, 6]  # before step k: what steps 0..k-1 wrote


# --- files ---------------------------------------------------------------------------------------------------------
def test_checkpoint_files_hold_no_pickle(tmp_path):
    method, backbone = byol_method(optimizer="adamw")
    run(method, backbone, tmp_path, Budget(steps=3), checkpoint_every_steps=1)
    work = tmp_path / "work"
    meta = json.loads((work / ckpt.CHECKPOINT).read_text())
    assert sorted(p.name for p in work.iterdir()) == sorted([ckpt.CHECKPOINT, meta["tensors"]])
    assert meta["format"] == ckpt.FORMAT and meta["config_digest"] == "digest-1" and meta["step"] == 3
    assert meta["finished"] and meta["stopped_by"] == "steps" and len(meta["loss_curve"]) == 3
    with safe_open(str(work / meta["tensors"]), framework="pt") as fh:
        assert fh.metadata()["step"] == "3"
        keys = set(fh.keys())
        assert fh.get_tensor("rng/torch").dtype == torch.uint8
    assert {f"objective/{k}" for k in method.objective.state_dict()} <= keys
    assert any(k.startswith("optimizer/state/") for k in keys)
    loaded_meta, state = ckpt.load(work)
    assert_same(state["objective"], weights(method))


def test_encode_decode_round_trip():
    value = {"a": (1, 2.5, None), 3: [torch.arange(3)], "f": float("inf"), "__tensor__": "not a marker",
             "nested": {"x": torch.ones(2, dtype=torch.bfloat16)}}
    tensors: dict[str, torch.Tensor] = {}
    encoded = ckpt.encode(value, tensors)
    back = ckpt.decode(json.loads(json.dumps(encoded, allow_nan=False)), tensors)
    assert back["a"] == (1, 2.5, None) and back["f"] == float("inf") and back["__tensor__"] == "not a marker"
    assert torch.equal(back[3][0], torch.arange(3)) and back["nested"]["x"].dtype == torch.bfloat16


def test_an_orphan_tensor_file_is_never_read(tmp_path):
    method, backbone = contrastive_method()
    run(method, backbone, tmp_path, Budget(steps=2))
    work = tmp_path / "work"
    orphan = work / "checkpoint-00000009-deadbeef.safetensors"  # a kill after the tensors, before the JSON
    save_file({"x": torch.zeros(1)}, str(orphan), metadata={"step": "9"})
    meta, state = ckpt.load(work)
    assert meta["step"] == 2 and "x" not in state
    ckpt.save(work, "digest-1", {"step": 3}, {"y": torch.ones(1)})
    assert not orphan.exists() and ckpt.load(work)[1]["y"].item() == 1.0


def test_clear_removes_only_the_checkpoint(tmp_path):
    method, backbone = contrastive_method()
    run(method, backbone, tmp_path, Budget(steps=2))
    (tmp_path / "work" / "run.json").write_text("{}")
    ckpt.clear(tmp_path / "work")
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["run.json"] and ckpt.load(tmp_path / "work") is None


def test_another_configs_workdir_is_refused_and_left_alone(tmp_path):
    method, backbone = contrastive_method()
    run(method, backbone, tmp_path, Budget(steps=2))
    work = tmp_path / "work"
    before = {p.name: p.read_bytes() for p in work.iterdir()}
    again, backbone = contrastive_method()
    with pytest.raises(OptionError) as info:
        run(again, backbone, tmp_path, Budget(steps=2), config_digest="digest-2")
    message = str(info.value)
    assert str(work) in message and "--out" in message and "delete" in message and "digest-1" in message
    assert {p.name: p.read_bytes() for p in work.iterdir()} == before and again.objective.calls == 0


# --- a real kill ------------------------------------------------------------------------------------------------
def _script(workdir: Path, out: Path, block_at: int | None = None) -> subprocess.Popen:
    args = [sys.executable, __file__, str(workdir), str(out)] + ([str(block_at)] if block_at else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, env=env, cwd=Path(__file__).parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output.decode()


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(tmp_path):
    _main(str(tmp_path / "reference"), str(tmp_path / "reference.safetensors"), None)  # uninterrupted, here
    victim = _script(tmp_path / "killed", tmp_path / "unused.safetensors", block_at=10)
    deadline = time.monotonic() + 120
    while not (tmp_path / "killed" / ckpt.CHECKPOINT).exists():  # kill as soon as the first checkpoint exists
        assert victim.poll() is None, victim.communicate()[0].decode()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert ckpt.read_meta(tmp_path / "killed")["step"] < KILL_BUDGET.steps
    _finish(_script(tmp_path / "killed", tmp_path / "resumed.safetensors"))
    assert_same(load_file(str(tmp_path / "reference.safetensors")), load_file(str(tmp_path / "resumed.safetensors")))
    assert ckpt.read_meta(tmp_path / "killed")["step"] == KILL_BUDGET.steps


def _main(workdir: str, out: str, block_at: int | None) -> None:
    method, backbone = byol_method(optimizer="lars")
    if block_at:
        forward, calls = method.objective.forward, [0]

        def blocking(views, labels=None):
            calls[0] += 1
            if calls[0] == block_at:
                signal.pause()  # until SIGKILL
            return forward(views, labels)

        method.objective.forward = blocking
    train(method, backbone, tiny_data(10), budget=KILL_BUDGET, workdir=workdir, config_digest="kill",
          checkpoint_every_steps=1, method_name="tiny")
    save_file({k: v.contiguous() for k, v in weights(method).items()}, out)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
