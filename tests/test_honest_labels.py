"""Short labels keep every option that changes what an encoder is (weights, checkpoint, image size, layer): a
random-init 32 px ResNet-18 is never shown as plain ``timm/resnet18``."""

from __future__ import annotations

import pytest

from benchmark.leaderboards.board import cells_frame, encoder_short_name
from benchmark.results.record import EncoderBlock, Record


def _enc(name, options, weights=None):
    return EncoderBlock.from_json({"name": name, "label": name, "options": options, "weights": weights}, "t", "e")


@pytest.mark.parametrize("name, options, weights, short", [
    ("timm/resnet18", {"pretrained": False, "img_size": 32, "seed": 0, "layer": None, "checkpoint": None},
     "random-init(seed=0)", "timm/resnet18 (random init, 32 px)"),
    ("timm/resnet18", {"pretrained": True, "img_size": None, "layer": None, "checkpoint": None},
     "pretrained:timm/resnet18.a1_in1k", "timm/resnet18"),
    ("timm/resnet18", {"pretrained": True, "img_size": None, "layer": 2, "checkpoint": "/data/x/best.safetensors"},
     "checkpoint:best.safetensors (sha256 0011)", "timm/resnet18 (ckpt best.safetensors, layer 2)"),
    ("hf/bert-base-uncased", {"layer": 3}, "pretrained:bert-base-uncased@main", "hf/bert-base-uncased (layer 3)"),
    ("pixels", {"size": None}, None, "pixels"),
    ("timm/vit_tiny_patch16_224", {"pretrained": False, "img_size": 32, "patch_size": 4}, "random-init(seed=0)",
     "timm/vit_tiny_patch16_224 (random init, 32 px, patch 4)"),
    ("hf/intfloat/e5-small-v2", {"query_prompt": "query: ", "document_prompt": "passage: "}, "x",
     "hf/intfloat/e5-small-v2 (prompts)"),
    ("hf/intfloat/e5-small-v2", {"query_prompt": None, "document_prompt": None}, "x", "hf/intfloat/e5-small-v2"),
    ("run:simclr__timm-resnet18-img_size-32-pretrained-false__fashion-mnist__s0__1a2b3c4d5e", {}, "x", "run:simclr"),
])
def test_short_name_keeps_what_changes_the_encoder(name, options, weights, short):
    assert encoder_short_name(_enc(name, options, weights)) == short


def test_a_pretraining_run_is_named_by_its_method_and_backbone_as_in_the_methods_table():
    """Two runs of one method on two backbones were ``run:dino (1)`` and ``run:dino (2)`` in a board's tables."""
    def run(backbone):
        block = {"name": f"run:dino__{backbone}__fashion-mnist__s0__1a2b3c4d5e", "options": {}, "weights": "x",
                 "pretraining": {"method": "dino", "backbone": backbone, "seed": 0}}
        return EncoderBlock.from_json(block, "t", "e")
    assert encoder_short_name(run("timm/resnet18[img_size=32,pretrained=false]")) == "dino · resnet18"
    assert encoder_short_name(run("timm/vit_tiny_patch16_224[img_size=32,patch_size=4,pretrained=false]")) \
        == "dino · vit_tiny_patch4_32"


def test_the_board_frame_uses_them():
    record = Record.from_json({
        "schema_version": 1, "id": "x", "status": "ok",
        "encoder": {"name": "timm/resnet18", "label": "timm/resnet18[img_size=32,pretrained=false]",
                    "options": {"pretrained": False, "img_size": 32}, "weights": "random-init(seed=0)"},
        "dataset": {"name": "digits", "label": "digits", "modality": "image", "classes": ["a", "b"]},
        "protocol": {"name": "knn", "label": "knn", "primary_metric": "top1"},
        "metrics": {"top1": 0.5}, "seed": 0, "timings": {}, "environment": {}, "error": None})
    assert cells_frame([record])["encoder_name"].tolist() == ["timm/resnet18 (random init, 32 px)"]


def _run_record(budget_steps: int, seed: int = 0, method: str = "dino") -> Record:
    folder = f"run:{method}__timm-resnet18__fashion-mnist__s{seed}__{budget_steps:010d}"
    return Record.from_json({
        "schema_version": 1, "id": folder, "status": "ok",
        "encoder": {"name": folder, "label": folder, "options": {}, "weights": f"pretrained-run:{method}",
                    "pretraining": {"method": method, "backbone": "timm/resnet18[img_size=32,pretrained=false]",
                                    "seed": seed, "budget": {"steps": budget_steps},
                                    "data": {"dataset": "fashion-mnist", "size": 60000}}},
        "dataset": {"name": "fashion-mnist", "label": "fashion-mnist", "modality": "image", "classes": ["a", "b"]},
        "protocol": {"name": "knn", "label": "knn", "primary_metric": "top1"},
        "metrics": {"top1": 0.5 + budget_steps / 1e5, "top1_ci95": [0.49, 0.51], "n_test": 10000}, "seed": 0,
        "timings": {}, "environment": {}, "error": None, "created_at": "2026-12-01T00:00:00+00:00"})


def test_runs_of_one_method_and_backbone_are_told_apart_by_what_differs():
    """Two budgets of one method and backbone (the common ablation) were both ``dino · resnet18``: ``(1)`` and
    ``(2)`` in a board's tables, and two rows of the same label in the methods table."""
    from benchmark.leaderboards.methods import methods_frame

    records = [_run_record(100), _run_record(2000), _run_record(2000, seed=1), _run_record(100, method="simclr")]
    names = dict(zip(*[cells_frame(records)[c] for c in ("encoder", "encoder_name")], strict=True))
    assert sorted(names.values()) == ["dino · resnet18 · 100 steps", "dino · resnet18 · 2000 steps · seed 0",
                                      "dino · resnet18 · 2000 steps · seed 1", "simclr · resnet18"]
    assert sorted(methods_frame(records)["label"]) == sorted(names.values())  # the same names in both tables
