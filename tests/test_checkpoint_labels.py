"""A user's absolute path in ``checkpoint=`` (timm/, hf/) or an ``hf/<local folder>`` never reaches a label, a
record's options or a published table: the file shows as ``name@<short sha256>``, the folder as its last part
and a content hash; the path stays in the spec string the user typed, and the record keeps the full sha256."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from test_board import rec

from benchmark.leaderboards.board import encoder_short_name
from benchmark.testing import catalog_with


@pytest.fixture(scope="module")
def catalog():
    return catalog_with()


def _file(tmp_path, name="model.safetensors", data=b"weights"):
    folder = tmp_path / "home" / "someone" / "secret-project"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_a_timm_checkpoint_is_labelled_by_file_name_and_content_hash(tmp_path, catalog):
    path, sha = _file(tmp_path)
    resolved = catalog.resolve("encoders", f"timm/resnet18[checkpoint={path},img_size=32]")
    assert resolved.label == f"timm/resnet18[checkpoint=model.safetensors@{sha[:6]},img_size=32]"
    assert resolved.shown_options["checkpoint"] == f"model.safetensors@{sha[:6]}"
    assert resolved.options["checkpoint"] == str(path)  # what loads it: the path, as typed
    other, other_sha = _file(tmp_path / "b", data=b"other weights")  # same name, other content: another label
    assert catalog.resolve("encoders", f"timm/resnet18[checkpoint={other},img_size=32]").label != resolved.label


def test_an_hf_local_folder_is_named_by_its_last_part_and_content(tmp_path, catalog):
    folder = tmp_path / "home" / "someone" / "my-bert"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"w1")
    first = catalog.resolve("encoders", f"hf/{folder}[pooling=cls]")
    assert first.name.startswith("hf/my-bert@") and str(tmp_path) not in first.label
    assert first.variant == str(folder)  # loading still reads the folder
    (folder / "model.safetensors").write_bytes(b"w2")
    from benchmark.storage import local_weights

    local_weights._HASHES.clear()  # noqa: SLF001 (the per-process cache keys on mtime; this test is faster)
    assert catalog.resolve("encoders", f"hf/{folder}[pooling=cls]").name != first.name
    assert catalog.resolve("encoders", "hf/sentence-transformers/all-MiniLM-L6-v2").name == \
        "hf/sentence-transformers/all-MiniLM-L6-v2"  # a hub id is its own name


def test_short_labels_of_records_made_before_show_the_file_and_hash_not_the_path():
    r = rec("timm/resnet18[checkpoint=/home/me/x/best.pth,img_size=32]", "d1", 0.5)
    encoder = dataclasses.replace(r.encoder, options={"checkpoint": "/home/me/x/best.pth", "img_size": 32},
                                  extra={"checkpoint": {"file": "best.pth", "sha256": "1a2b3c4d" + "0" * 56}})
    assert encoder_short_name(encoder) == "timm/resnet18 (ckpt best.pth@1a2b3c, 32 px)"
    old_hf = rec("hf//home/me/models/bert", "d1", 0.5)
    assert encoder_short_name(old_hf.encoder) == "hf/bert"


@pytest.mark.slow  # loads a ResNet-18 and evaluates it
def test_no_path_in_the_record_or_the_published_tables(tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    from benchmark.cli import main

    torch.manual_seed(0)
    model = timm.create_model("resnet18", pretrained=False, num_classes=0)
    path, _ = _file(tmp_path, "resnet18-run.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    results, board = tmp_path / "results", tmp_path / "board"
    spec = f"timm/resnet18[checkpoint={path},img_size=32]"
    assert main(["eval", "-q", "-e", spec, "-d", "digits", "-p", "knn[k=5]", "--no-cache", "--results",
                 str(results)]) == 0
    (record_file,) = results.glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "ok" and record["encoder"]["checkpoint"]["sha256"] == sha
    assert main(["leaderboard", "--results", str(results), "--out", str(board)]) == 0
    for text in [record_file.name, record_file.read_text(), *(p.read_text() for p in board.iterdir()
                                                            if p.suffix in (".md", ".csv", ".json", ".html"))]:
        assert "secret-project" not in text and str(tmp_path) not in text
    assert f"ckpt resnet18-run.safetensors@{sha[:6]}, 32 px" in (board / "leaderboard.md").read_text()
