"""The 2021 methods (barlowtwins, mocov3, dino, mae) and the contract changes they need: multi-crop views batched
per resolution, the objective's ``before_step`` schedule hook, a ViT's patch tokens.

On the tiny conv backbone of test_methods_builtin (and timm's ViT-tiny at 32 px, 4 px patches, where a method
needs a ViT): registration and options, views, a hand-written 3-step SGD loop over each objective, DINO's
schedules and centre, MoCo v3's recipes, MAE's masking, bad input as one-line OptionErrors. The end-to-end tests
(marked slow) train each through ``pretrain`` on timm's ResNet-18 (MAE: ViT-tiny), load the result as
``run:<folder>``, and resume bit-identically after a SIGKILL, as test_checkpoint.py does for the loop.

Run as a script (``python tests/test_methods_2021.py METHOD WORKDIR OUT [BLOCK_AT]``), this file trains METHOD
for the kill test and writes the final weights to OUT; with BLOCK_AT it blocks forever in that forward call.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_methods_builtin import backbone_of, batches, images, tiny_backbone, trainable

from benchmark.errors import OptionError
from benchmark.methods import barlowtwins, checkpoint, dino, mae, mocov3
from benchmark.methods.schedule import StepInfo
from benchmark.methods.views import by_resolution
from benchmark.specs import Backbone, Budget, Method, MethodSpec, Split
from benchmark.testing import catalog_with

MODULES = {"barlowtwins": barlowtwins, "mocov3": mocov3, "dino": dino, "mae": mae}
SMALL = {"barlowtwins": {"proj_dim": 16}, "mocov3": {"hidden": 16, "dim": 8},
         "dino": {"out_dim": 32, "hidden": 16, "bottleneck": 8, "local_crops": 2},
         "mae": {"decoder_dim": 16, "decoder_depth": 1, "decoder_heads": 2}}
VIT = "timm/vit_tiny_patch16_224[pretrained=false,img_size=32,patch_size=4]"
RESNET = "timm/resnet18[pretrained=false,img_size=32]"


@pytest.fixture(autouse=True)
def two_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(min(2, threads))
    yield
    torch.set_num_threads(threads)


def timm_backbone(spec: str = VIT) -> Backbone:
    from benchmark.catalog import Catalog

    resolved = Catalog.load().resolve("encoders", spec)
    return backbone_of(resolved, resolved.load())


def build(name: str, backbone: Backbone | None = None, **options) -> Method:
    torch.manual_seed(0)
    if backbone is None:
        backbone = timm_backbone() if name == "mae" else tiny_backbone()
    return MODULES[name].build(backbone, **{**SMALL[name], **options})


# --- registration, options, views ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODULES)
def test_each_module_registers_one_method_with_valid_defaults(name):
    spec = catalog_with().specs["methods"][name]  # registered by benchmark.methods.builtin
    assert isinstance(spec, MethodSpec) and spec.name == name and not spec.uses_labels
    assert {"lr", "batch_size", "weight_decay"} <= set(spec.defaults)
    spec.validate(dict(spec.defaults))


@pytest.mark.parametrize("spec_string", ["barlowtwins[lambd=-1]", "barlowtwins[proj_dim=0]", "mocov3[tau=1]",
                                         "mocov3[temperature=0]", "dino[local_crops=-1]", "dino[teacher_temp=0]",
                                         "dino[center_momentum=1]", "mae[mask_ratio=1]", "mae[decoder_heads=3]"])
def test_validators_reject_unusable_values_at_plan_time(spec_string):
    from benchmark.catalog import Catalog

    with pytest.raises(OptionError, match="option"):
        Catalog.load().resolve("methods", spec_string)


def test_dino_views_are_two_global_and_n_local_crops_batched_per_resolution():
    method = build("dino", local_crops=3, local_size=12)
    torch.manual_seed(0)
    views = method.views(images(1)[0])
    assert [tuple(v.shape) for v in views] == [(3, 32, 32)] * 2 + [(3, 12, 12)] * 3
    assert not torch.equal(views[0], views[1]) and not torch.equal(views[2], views[3])
    clone = pickle.loads(pickle.dumps(method.views))
    torch.manual_seed(0)
    assert all(torch.equal(a, b) for a, b in zip(views, clone(images(1)[0]), strict=True))
    batch = batches(method, images(4))
    groups = by_resolution(batch)
    assert [p for p, _ in groups] == [[0, 1], [2, 3, 4]]
    assert torch.equal(groups[0][1], torch.cat(batch[:2])) and torch.equal(groups[1][1], torch.cat(batch[2:]))


def test_dino_student_runs_once_per_resolution():
    backbone = tiny_backbone()
    method = build("dino", backbone, local_crops=2)
    sizes = []
    for who, encoder in (("student", backbone.encoder), ("teacher", method.objective.teacher_encoder)):
        encoder.backbone.register_forward_pre_hook(lambda m, args, who=who: sizes.append((who, *args[0].shape[2:])))
    method.objective.train()(batches(method, images(4)), None)
    assert sizes == [("student", 32, 32), ("student", 16, 16), ("teacher", 32, 32)]


# --- objectives --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["barlowtwins", "mocov3", "dino"])
def test_three_steps_train_the_backbone_and_the_heads(name):
    """Three steps of the method's kind of optimiser (SGD; for DINO AdamW at its recipe's scale of lr, on a head
    wide enough for its init: the normalised bottleneck makes the loss sharp)."""
    backbone = tiny_backbone()
    method = build(name, backbone, **({"hidden": 256, "bottleneck": 64, "out_dim": 64} if name == "dino" else {}))
    objective = method.objective
    encoder_params = list(backbone.encoder.parameters())
    params = trainable(objective)
    assert all(any(p is q for q in params) for p in encoder_params) and len(params) > len(encoder_params)
    if name == "dino":
        objective.before_step(StepInfo(10, 20, 5))  # past the first epoch: DINO's last layer trains
        objective.center_momentum = 1.0  # the centre (the targets) held still, so the losses compare
    views = batches(method, images(8))
    optimizer = torch.optim.AdamW(params, lr=1e-4) if name == "dino" else torch.optim.SGD(params, lr=0.01, momentum=0.9)
    objective.train()
    losses = []
    for _ in range(3):
        loss = objective(views, None)
        optimizer.zero_grad()
        loss.backward()
        assert encoder_params[0].grad is not None and encoder_params[0].grad.abs().sum() > 0
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses


@pytest.mark.parametrize("name", ["mocov3", "dino"])
def test_momentum_targets_are_frozen_copies_outside_the_optimiser(name):
    method = build(name)
    targets = [p for _, t in method.momentum_pairs for p in t.parameters()]
    assert targets and not any(p.requires_grad for p in targets)
    for online, target in method.momentum_pairs:
        assert all(torch.equal(a, b) for a, b in zip(online.parameters(), target.parameters(), strict=True))
    assert method.defaults.tau == {"mocov3": 0.99, "dino": 0.996}[name]


def test_dino_schedules_follow_the_step_the_loop_gives():
    method = build("dino", warmup_teacher_temp=0.04, teacher_temp=0.08, teacher_temp_warmup=0.5,
                   freeze_last_share=0.4)
    objective = method.objective
    temps = []
    for step in (0, 5, 10, 15):
        objective.before_step(StepInfo(step, 20, 8))
        temps.append(objective.teacher_temp)
    assert temps == pytest.approx([0.04, 0.06, 0.08, 0.08])
    views = batches(method, images(4))
    objective.train()
    for step, frozen in ((7, True), (8, False)):  # the last layer gets no gradient in the first 40% of 20 steps
        objective.before_step(StepInfo(step, 20, 8))
        objective.zero_grad()
        objective(views, None).backward()
        assert (objective.head.last.grad is None) == frozen
        assert objective.head.mlp[0].weight.grad is not None


def test_dino_centre_moves_in_training_only_and_is_in_the_state():
    method = build("dino")
    objective, views = method.objective, batches(method, images(4))
    assert "center" in objective.state_dict()
    objective.eval()
    with torch.no_grad():
        objective(views, None)
    assert torch.equal(objective.center, torch.zeros_like(objective.center))
    objective.train()
    with torch.no_grad():
        objective(views, None)
        teacher = objective.teacher_head(objective.teacher_encoder.encode(torch.cat(views[:2])))
    assert torch.allclose(objective.center, 0.1 * teacher.mean(0, keepdim=True), atol=1e-6)


def test_dino_head_last_layer_is_weight_normalised_with_its_norm_fixed_at_one():
    head = dino.DINOHead(12, 16, 8, 32)
    x = torch.randn(4, 12)
    reference = torch.nn.Linear(8, 32, bias=False)
    with torch.no_grad():
        reference.weight.copy_(head.last)
        reference = torch.nn.utils.parametrizations.weight_norm(reference)  # torch's weight_norm, g = 1
        reference.parametrizations.weight.original0.fill_(1.0)
        before = head(x)
        want = reference(torch.nn.functional.normalize(head.mlp(x), dim=-1))
        head.last.mul_(5.0)  # the length of the rows does not matter
        after = head(x)
    assert torch.allclose(before, want, atol=1e-6) and torch.allclose(after, before, atol=1e-6)


def test_mocov3_recipes_follow_the_backbone_kind():
    resnet = build("mocov3")
    assert (resnet.defaults.optimizer, resnet.defaults.lr, resnet.objective.temperature) == ("lars", 0.6, 1.0)
    assert len([m for m in resnet.objective.projector if isinstance(m, torch.nn.Linear)]) == 2
    last = resnet.objective.projector[-1]
    assert isinstance(last, torch.nn.BatchNorm1d) and not last.affine
    vit_backbone = timm_backbone()
    vit = build("mocov3", vit_backbone)
    assert (vit.defaults.optimizer, vit.defaults.lr, vit.defaults.weight_decay, vit.objective.temperature) == \
           ("adamw", 1.5e-4, 0.1, 0.2)
    assert len([m for m in vit.objective.projector if isinstance(m, torch.nn.Linear)]) == 3
    patch = list(vit_backbone.encoder.backbone.patch_embed.parameters())
    assert patch and not any(p.requires_grad for p in patch)  # frozen random patch projection, as the paper
    assert build("mocov3", temperature=0.5, lr=0.1).defaults.lr == 0.1


def test_mae_masks_three_quarters_and_the_encoder_sees_only_the_visible_patches():
    backbone = timm_backbone()
    method = build("mae", backbone)
    vit = backbone.encoder.backbone
    seen = []
    handle = vit.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    views = batches(method, images(4))
    method.objective.train()
    loss = method.objective(views, None)
    handle.remove()
    assert seen == [(4, 1 + 16, 192)]  # class token + 25% of the 8x8 patches
    loss.backward()
    assert vit.patch_embed.proj.weight.grad is not None and torch.isfinite(loss)
    keep, restore, mask = mae.random_masking(3, 64, 0.75, torch.device("cpu"))
    assert keep.shape == (3, 16) and mask.sum(1).tolist() == [48.0] * 3
    assert all(mask[i, keep[i]].sum() == 0 for i in range(3))  # the kept patches are the unmasked ones
    assert torch.equal(torch.argsort(restore, dim=1)[:, :16], keep)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dino", "mocov3"])
def test_dino_and_mocov3_train_a_vit(name):
    """On ViT-tiny (32 px, 4 px patches): DINO's local crops (16 px) go through the ViT (its positional embedding
    resampled to the 4x4 grid, the full-size output unchanged); one step reaches the blocks' weights."""
    backbone = timm_backbone()
    vit = backbone.encoder.backbone
    x = torch.randn(2, 3, 32, 32)
    vit.eval()
    with torch.no_grad():
        before = vit(x)
    method = build(name, backbone)
    with torch.no_grad():
        assert torch.allclose(vit(x), before, atol=1e-6)  # allow_any_size leaves full-size inputs alone
    grids = []
    vit.blocks[0].register_forward_pre_hook(lambda m, args: grids.append(args[0].shape[1]))
    method.objective.train()
    if name == "dino":
        method.objective.before_step(StepInfo(0, 10, 1))
    loss = method.objective(batches(method, images(4)), None)
    loss.backward()
    assert torch.isfinite(loss) and vit.blocks[-1].mlp.fc1.weight.grad is not None
    assert grids == ([1 + 64, 1 + 16] if name == "dino" else [1 + 64])  # the student's forward passes


# --- bad input: one line ---------------------------------------------------------------------------------------
def test_mae_on_a_backbone_without_patch_tokens_is_one_line():
    with pytest.raises(OptionError) as info:
        build("mae", tiny_backbone())
    assert "needs a ViT backbone with patch tokens" in str(info.value) and "\n" not in str(info.value)


def test_a_patch_size_that_does_not_divide_the_image_is_one_line():
    backbone = timm_backbone("timm/vit_tiny_patch16_224[pretrained=false,img_size=30,patch_size=4]")
    for name in ("mae", "dino", "mocov3"):
        with pytest.raises(OptionError, match="does not divide the input size 30x30") as info:
            build(name, backbone)
        assert "\n" not in str(info.value)
    with pytest.raises(OptionError, match="does not divide the crop size 14"):
        build("dino", timm_backbone(), local_size=14)


def test_a_crop_larger_than_the_image_is_one_line():
    with pytest.raises(OptionError, match="local_size 40 is larger than the image") as info:
        build("dino", local_size=40)
    assert "\n" not in str(info.value)


# --- end to end: pretrain, run:<folder>, resume after SIGKILL -------------------------------------------------------
E2E = {"barlowtwins": ("barlowtwins[proj_dim=32]", RESNET), "mocov3": ("mocov3[hidden=32,dim=16]", RESNET),
       "dino": ("dino[out_dim=64,hidden=32,bottleneck=16,local_crops=2]", RESNET),
       "mae": ("mae[decoder_dim=32,decoder_depth=1,decoder_heads=2]", VIT)}
KILL_STEPS = 6


def _data(n: int = 16) -> Split:
    return Split(images(n, seed=3), [i % 3 for i in range(n)])


def _method(name: str) -> tuple[Method, Backbone]:
    from benchmark.catalog import Catalog

    catalog = Catalog.load()
    method_res, backbone_res = (catalog.resolve(kind, s) for kind, s in zip(("methods", "encoders"), E2E[name],
                                                                               strict=True))
    torch.manual_seed(0)
    backbone = backbone_of(backbone_res, backbone_res.load())
    return method_res.spec.build(backbone, **method_res.options), backbone


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_pretrain_trains_and_the_run_loads_as_an_encoder(name, tmp_path):
    from benchmark.catalog import Catalog
    from benchmark.methods.budget import parse_budget
    from benchmark.methods.runs import PretrainRequest, load_run, pretrain, read_run

    catalog = Catalog.load()
    request = PretrainRequest(catalog.resolve("methods", E2E[name][0]), catalog.resolve("encoders", E2E[name][1]),
                              catalog.resolve("datasets", "digits"), parse_budget("2steps"), batch_size=4,
                              train_size=16)
    folder = pretrain(catalog, request, tmp_path / "runs")
    run = read_run(folder)
    assert run["status"] == "finished" and run["result"]["steps"] == 2 and run["method"].startswith(name)
    encoder = load_run(str(folder))
    sample = catalog.resolve("datasets", "digits").load().split("test").samples[:3]
    with torch.no_grad():
        feats = encoder.encode(encoder.preprocess(sample))
    assert feats.shape == (3, encoder.embed_dim) and torch.isfinite(feats).all()


@pytest.mark.slow
def test_the_cli_trains_dino_with_the_online_probe_plots_its_curves_and_evaluates_the_run(tmp_path, capsys):
    """`repbench pretrain --method dino ... --probe-every 2 --eval knn`: the watch curve in run.json and
    curves.json, curves.png in the folder, and a kNN record of run:<folder>."""
    import json

    from benchmark.cli import main

    code = main(["pretrain", "--method", E2E["dino"][0], "--backbone", RESNET, "--dataset", "digits",
                 "--train-size", "96", "--budget", "4steps", "--batch-size", "8", "--probe-every", "2",
                 "--eval", "knn", "--device", "cpu", "--out", str(tmp_path / "runs"),
                 "--results", str(tmp_path / "results"), "--no-cache"])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    [folder] = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    run = json.loads((folder / "run.json").read_text())
    curve = run["result"]["watch_curve"]
    assert [p["step"] for p in curve] == [2, 4] and all(0 <= p["knn"] <= 1 and p["rankme"] > 0 for p in curve)
    assert json.loads((folder / "curves.json").read_text())["watch"] == curve
    assert (folder / "curves.png").stat().st_size > 10_000
    assert "watch at step 4:" in out.err and f"encoder: run:{folder}" in out.out
    records = [p.read_text() for p in (tmp_path / "results").rglob("*.json")]
    assert any('"knn' in r and "run:" in r and '"watch_curve"' in r for r in records), records[:1]


def _script(name: str, workdir: Path, out: Path, block_at: int | None = None) -> subprocess.Popen:
    args = [sys.executable, __file__, name, str(workdir), str(out)] + ([str(block_at)] if block_at else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, env=env, cwd=Path(__file__).parents[1], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODULES)
def test_resume_after_sigkill_is_bit_identical(name, tmp_path):
    reference = _script(name, tmp_path / "reference", tmp_path / "reference.safetensors")
    output, _ = reference.communicate(timeout=600)
    assert reference.returncode == 0, output.decode()[-3000:]
    victim = _script(name, tmp_path / "killed", tmp_path / "unused.safetensors", block_at=4)
    deadline = time.monotonic() + 300
    while (checkpoint.read_meta(tmp_path / "killed") or {}).get("step", 0) < 3:  # blocked in the 4th step
        assert victim.poll() is None, victim.communicate()[0].decode()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL and checkpoint.read_meta(tmp_path / "killed")["step"] == 3
    resumed = _script(name, tmp_path / "killed", tmp_path / "resumed.safetensors")
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output.decode()[-3000:]
    want, got = load_file(str(tmp_path / "reference.safetensors")), load_file(str(tmp_path / "resumed.safetensors"))
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key


def _main(name: str, workdir: str, out: str, block_at: int | None) -> None:
    from benchmark.methods.trainer import train

    torch.set_num_threads(1)
    method, backbone = _method(name)
    if block_at:
        forward, calls = method.objective.forward, [0]

        def blocking(views, labels=None):
            calls[0] += 1
            if calls[0] == block_at:
                signal.pause()  # until SIGKILL
            return forward(views, labels)

        method.objective.forward = blocking
    train(method, backbone, _data(), budget=Budget(steps=KILL_STEPS),
          workdir=workdir, config_digest=f"kill-{name}", batch_size=4, checkpoint_every_steps=1, method_name=name)
    state = {k: v.detach().contiguous().clone() for k, v in method.objective.state_dict().items()}
    save_file(state, out)


if __name__ == "__main__":
    _main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else None)
