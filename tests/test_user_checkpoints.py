"""``checkpoint=`` for ``timm/`` and ``hf/`` encoders: users' own weights, written here as small files in the real
formats (torch and safetensors), wrapped and prefixed as trainers save them."""

from __future__ import annotations

import hashlib

import pytest
import timm
import torch
from safetensors.torch import save_file

from benchmark.catalog import Catalog
from benchmark.errors import DataError, OptionError
from benchmark.testing import catalog_with


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return catalog_with()


def _model(seed: int, num_classes: int = 10):
    torch.manual_seed(seed)
    return timm.create_model("resnet18", pretrained=False, num_classes=num_classes).eval()


def _pooled(model, x):
    with torch.no_grad():
        return model.forward_head(model.forward_features(x), pre_logits=True)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_torch_file_wrapped_and_ddp_prefixed_gives_the_trained_features(tmp_path, catalog):
    trained = _model(seed=7)
    path = tmp_path / "run.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in trained.state_dict().items()}, "epoch": 3}, path)
    enc = catalog.resolve("encoders", f"timm/resnet18[checkpoint={path},img_size=32]").load()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(enc.encode(x), _pooled(trained, x), atol=1e-5)
    assert enc.info["checkpoint"] == {"file": "run.pth", "sha256": _sha(path), "ignored_keys": ["fc.bias",
                                                                                                "fc.weight"]}
    assert enc.info["weights"] == f"checkpoint:run.pth (sha256 {_sha(path)[:16]})"


def test_safetensors_with_a_backbone_prefix_beside_a_projection_head(tmp_path, catalog):
    trained = _model(seed=3, num_classes=0)
    tensors = {f"backbone.{k}": v.contiguous() for k, v in trained.state_dict().items()}
    tensors["projector.0.weight"] = torch.zeros(4, 512)
    path = tmp_path / "ssl.safetensors"
    save_file(tensors, str(path))
    enc = catalog.resolve("encoders", f"timm/resnet18[checkpoint={path},img_size=32]").load()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(enc.encode(x), _pooled(trained, x), atol=1e-5)


def test_the_file_hash_is_in_the_fingerprint(tmp_path, catalog):
    paths = []
    for seed in (1, 2):
        paths.append(tmp_path / f"w{seed}.safetensors")
        save_file({k: v.contiguous() for k, v in _model(seed, 0).state_dict().items()}, str(paths[-1]))
    fps = {catalog.resolve("encoders", f"timm/resnet18[checkpoint={p}]").load().fingerprint for p in paths}
    plain = catalog.resolve("encoders", "timm/resnet18[pretrained=false]").load().fingerprint
    assert len(fps | {plain}) == 3


def test_a_checkpoint_of_another_architecture_names_the_keys(tmp_path, catalog):
    torch.manual_seed(0)
    other = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    path = tmp_path / "other.pth"
    torch.save(other.state_dict(), path)
    with pytest.raises(DataError, match=r"does not fit the architecture: \d+ missing key\(s\) \(.*\); \d+ "
                                        r"unexpected key\(s\)") as info:
        catalog.resolve("encoders", f"timm/resnet18[checkpoint={path}]").load()
    assert "\n" not in str(info.value) and "timm/resnet18" in str(info.value)


def test_shape_mismatch_and_pickled_objects_are_one_line(tmp_path, catalog):
    state = _model(0, 0).state_dict()
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    bad = tmp_path / "shape.pth"
    torch.save(state, bad)
    with pytest.raises(DataError, match="size mismatch for conv1.weight") as info:
        catalog.resolve("encoders", f"timm/resnet18[checkpoint={bad}]").load()
    assert "\n" not in str(info.value)
    pickled = tmp_path / "module.pth"
    torch.save(_model(0, 0), pickled)  # a whole pickled module: weights_only refuses to run its code
    with pytest.raises(DataError, match=r"weights_only=True\)") as info:
        catalog.resolve("encoders", f"timm/resnet18[checkpoint={pickled}]").load()
    assert "\n" not in str(info.value)


def test_a_missing_checkpoint_is_refused_before_any_work(tmp_path, catalog):
    with pytest.raises(OptionError, match=r"encoder 'timm/resnet18': checkpoint=.*nope.pth does not exist"):
        catalog.resolve("encoders", f"timm/resnet18[checkpoint={tmp_path / 'nope.pth'}]")


def test_hf_checkpoint_from_a_masked_lm_run(tmp_path, catalog):
    """A BertForMaskedLM state dict (``bert.`` prefix, ``cls.`` head) loads into hf/<local folder>."""
    from transformers import BertConfig, BertForMaskedLM, BertModel, BertTokenizerFast

    words = ["alpha", "beta", "gamma", "delta"]
    folder = tmp_path / "tiny-bert"
    folder.mkdir()
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    cfg = BertConfig(vocab_size=9, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=32)
    torch.manual_seed(0)
    BertModel(cfg).save_pretrained(folder, safe_serialization=True)
    torch.manual_seed(5)
    mlm = BertForMaskedLM(cfg).eval()
    path = tmp_path / "mlm.safetensors"
    save_file({k: v.clone().contiguous() for k, v in mlm.state_dict().items()}, str(path))
    plain = catalog.resolve("encoders", f"hf/{folder}[pooling=cls,normalize=false]").load()
    enc = catalog.resolve("encoders", f"hf/{folder}[pooling=cls,normalize=false,checkpoint={path}]").load()
    batch = enc.preprocess(["alpha beta", "gamma"])
    with torch.no_grad():
        want = mlm.bert(**batch).last_hidden_state[:, 0]
        assert torch.allclose(enc.encode(batch), want, atol=1e-5)
        assert not torch.allclose(plain.encode(batch), want, atol=1e-3)
    assert enc.info["checkpoint"]["sha256"] == _sha(path) and enc.fingerprint != plain.fingerprint
    assert str(tmp_path) not in enc.info["weights"]
