"""The recipe details the loop applies for the 2021 methods: AdamW's betas per recipe (MAE's (0.9, 0.95)), DINO's
weight decay on a cosine from 0.04 to 0.4, DINO's last layer frozen for a share of the run, and MAE's fixed 2-D
sine-cosine decoder position embedding (checked against a hand-written loop of the paper code's formula)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_methods_2021 import build
from test_trainer import contrastive_method, run

from benchmark.errors import OptionError
from benchmark.methods import mae, trainer
from benchmark.runtime.training import build_optimizer, cosine_between, set_weight_decay
from benchmark.specs import Budget, TrainDefaults


def test_adamw_takes_the_recipes_betas():
    params = [torch.nn.Parameter(torch.zeros(3, 3)), torch.nn.Parameter(torch.zeros(3))]
    assert build_optimizer(params, "adamw", 0.1, 0.05, 0.9).param_groups[0]["betas"] == (0.9, 0.999)
    opt = build_optimizer(params, "adamw", 0.1, 0.05, 0.9, betas=(0.9, 0.95))
    assert all(g["betas"] == (0.9, 0.95) for g in opt.param_groups)
    assert build("mae").defaults.betas == (0.9, 0.95)
    assert build("dino").defaults.betas == (0.9, 0.999) and build("mocov3").defaults.betas == (0.9, 0.999)


def test_weight_decay_schedule_is_a_cosine_on_the_decaying_groups_only():
    assert cosine_between(0, 10, 0.04, 0.4) == pytest.approx(0.04)
    assert cosine_between(5, 10, 0.04, 0.4) == pytest.approx(0.22)
    assert cosine_between(10, 10, 0.04, 0.4) == pytest.approx(0.4)
    params = [torch.nn.Parameter(torch.zeros(3, 3)), torch.nn.Parameter(torch.zeros(3))]
    opt = build_optimizer(params, "adamw", 0.1, 0.04, 0.9)
    set_weight_decay(opt, 0.3)
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, 0.3]


def test_the_loop_ramps_weight_decay_and_keeps_it_constant_without_an_end(tmp_path, monkeypatch):
    built = []

    def spy(*args, **kwargs):
        built.append(build_optimizer(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(trainer, "build_optimizer", spy)
    for end in (0.4, None):
        defaults = TrainDefaults(optimizer="adamw", lr=0.01, reference_batch=4, batch_size=4, weight_decay=0.04,
                                 weight_decay_end=end, betas=(0.8, 0.9))
        method, backbone = contrastive_method(defaults=defaults)
        seen: list[float] = []
        method.objective.before_step = lambda info, seen=seen: seen.append(
            max(g["weight_decay"] for g in built[-1].param_groups))
        run(method, backbone, tmp_path / str(end), Budget(steps=5))
        want = [cosine_between(k, 5, 0.04, end) for k in range(5)] if end is not None else [0.04] * 5
        assert seen == pytest.approx(want)
        assert all(g["betas"] == (0.8, 0.9) for g in built[-1].param_groups)
        assert min(g["weight_decay"] for g in built[-1].param_groups) == 0.0  # biases and norms never decay


def test_dino_recipe_ramps_weight_decay_and_freezes_the_last_layer_for_a_share_of_the_run():
    defaults = build("dino").defaults
    assert (defaults.weight_decay, defaults.weight_decay_end) == (0.04, 0.4)
    from benchmark.methods.schedule import StepInfo

    objective = build("dino").objective  # default share 1%: the first 10 of 1,000 steps, whatever the epoch length
    for step, frozen in ((0, True), (9, True), (10, False)):
        objective.before_step(StepInfo(step, 1000, 10_000))
        assert objective.head.frozen == frozen
    with pytest.raises(OptionError, match="freeze_last_share"):
        build("dino", freeze_last_share=1.5)


def mae_reference_pos_embed(dim: int, grid_h: int, grid_w: int) -> np.ndarray:
    """A loop over MAE's ``get_2d_sincos_pos_embed`` formula: half the channels from the column (``np.meshgrid(w,
    h)``'s first grid), half from the row, each ``[sin(pos * omega), cos(pos * omega)]``,
    ``omega_i = 1 / 10000 ** (i / (dim / 4))``."""
    out = np.zeros((grid_h * grid_w, dim))
    quarter = dim // 4
    for row in range(grid_h):
        for col in range(grid_w):
            for half, pos in enumerate((col, row)):
                for i in range(quarter):
                    omega = 1.0 / 10000 ** (i / quarter)
                    out[row * grid_w + col, half * 2 * quarter + i] = math.sin(pos * omega)
                    out[row * grid_w + col, half * 2 * quarter + quarter + i] = math.cos(pos * omega)
    return out


@pytest.mark.parametrize(("dim", "grid"), [(16, (4, 4)), (32, (3, 5))])
def test_mae_sincos_matches_the_papers_formula(dim, grid):
    np.testing.assert_allclose(mae.sincos_2d(dim, *grid).numpy(), mae_reference_pos_embed(dim, *grid), atol=1e-6)


def test_mae_decoder_position_embedding_is_fixed_and_saved():
    objective = build("mae").objective
    decoder = objective.decoder
    assert "pos_embed" not in dict(objective.named_parameters()) and "decoder.pos_embed" in objective.state_dict()
    prefix = decoder.prefix
    assert torch.equal(decoder.pos_embed[0, :prefix], torch.zeros(prefix, decoder.pos_embed.shape[-1]))
    assert torch.allclose(decoder.pos_embed[0, prefix:], mae.sincos_2d(16, 8, 8))  # 32 px, 4 px patches
    with pytest.raises(OptionError, match="decoder_dim"):
        build("mae", decoder_dim=18, decoder_heads=2)


def test_probe_size_flag_sets_the_online_probes_subsets():
    from benchmark.methods.watch import Watch, watch_from_flags

    assert watch_from_flags(100, False, 0) == Watch(every=100, seed=0)
    watch = watch_from_flags(100, False, 3, probe_size=10_000)
    assert watch is not None and (watch.probe_size, watch.heldout_size, watch.seed) == (10_000, 5_000, 3)
    with pytest.raises(OptionError, match="--probe-size needs --probe-every"):
        watch_from_flags(None, True, 0, probe_size=100)
    with pytest.raises(OptionError, match="--probe-size 1"):
        watch_from_flags(10, False, 0, probe_size=1)
