"""Under torchrun the fields of a task kind (a retrieval task's queries and corpus) are encoded by every rank, each
its share in the field's role, and gathered on rank 0: two real CPU ranks (gloo, from a fresh interpreter) give
exactly the fields of one process, and rank 1 encodes half of every field."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent

# The plugin and the rank program, written to a file and run by torchrun (and imported by the test for the
# single-process run): a role-aware toy encoder counting what this process encoded, 37 queries and 41 documents
# (odd: both fields are padded on 2 ranks), and a protocol that scores qrels-retrieval and saves the fields.
PROGRAM = '''
import json, os, sys
from pathlib import Path

import numpy as np
import torch

from benchmark.datasets.pairs import FieldTaskDataset, RetrievalData
from benchmark.encoders.roles import with_prompts
from benchmark.hookspecs import hookimpl
from benchmark.protocols.qrels import evaluate_qrels
from benchmark.specs import DatasetSpec, EncoderSpec, ProtocolSpec

ENCODED = [0]
WORDS = "cat dog market stock purr bark rates young kitten puppy fell rose day night".split()


class Letters:
    modality, embed_dim, info, fingerprint = "text", 27, {"weights": "none"}, "letters"

    def preprocess(self, samples):
        return list(samples)

    def encode(self, batch):
        ENCODED[0] += len(batch)
        return torch.tensor([[t.count(chr(97 + i)) + 1.0 for i in range(26)] + [len(t)] for t in batch])


def texts(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 9)))) for _ in range(n)]


def data():
    docs = texts(41, 1)
    qids = [f"q{i}" for i in range(37)]
    qrels = {q: {f"d{(i * 7) % 41}": 1 + i % 2, f"d{(i * 3) % 41}": 1} for i, q in enumerate(qids)}
    return RetrievalData(qids, texts(37, 0), [f"d{i}" for i in range(41)], docs, qrels)


def dump(task, out=None):
    result = evaluate_qrels(task)
    np.savez(Path(os.environ["FIELDS_OUT"]), queries=task.embeddings("queries"), corpus=task.embeddings("corpus"))
    return result


@hookimpl
def register_encoders():
    return [EncoderSpec("toy-roles", "text", load=lambda: with_prompts(Letters(), "query:", "passage:"))]


@hookimpl
def register_datasets():
    return [DatasetSpec("toy-fields", "text", load=lambda: FieldTaskDataset("toy-fields", data), kind="retrieval")]


@hookimpl
def register_protocols():
    return [ProtocolSpec("dump-fields", evaluate=dump, primary_metric="ndcg@10", kinds=("retrieval",),
                         modalities=("text",))]


def run(out, distributed):
    from benchmark.plan import make_plan
    from benchmark.runner import RunConfig, run_plan
    from benchmark.testing import catalog_with

    catalog = catalog_with(("toy", sys.modules[__name__]))
    rank = int(os.environ.get("RANK", "0")) if distributed else "single"
    config = RunConfig(results_dir=out / f"results{rank}", cache_dir=out / f"cache{rank}", device="cpu",
                       batch_size=4, quiet=True, distributed=distributed)
    records = run_plan(catalog, make_plan(catalog, ["toy-roles"], ["toy-fields"], ["dump-fields"]), config)
    return rank, [r.to_json() for r in records]


if __name__ == "__main__":
    from benchmark.testing import gloo_group

    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    os.environ["FIELDS_OUT"] = str(out / "fields-ranks.npz")
    with gloo_group():
        rank, records = run(out, True)
    (out / f"rank{rank}.json").write_text(json.dumps({"encoded": ENCODED[0], "records": records}))
'''


@pytest.mark.slow
def test_two_ranks_encode_a_share_of_each_field_and_gather_the_single_process_fields(tmp_path, monkeypatch):
    program = tmp_path / "fields_program.py"
    program.write_text(PROGRAM)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(program),
           str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(HERE.parent),
                                                                                os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert r0["encoded"] == r1["encoded"] == 19 + 21  # ceil(37 / 2) queries + ceil(41 / 2) documents each
    assert r1["records"] == [] and [r["status"] for r in r0["records"]] == ["ok"]

    spec = importlib.util.spec_from_file_location("fields_program", program)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fields_program"] = module
    try:
        spec.loader.exec_module(module)
        monkeypatch.setenv("FIELDS_OUT", str(tmp_path / "fields-single.npz"))
        _, [single] = module.run(tmp_path, False)
    finally:
        del sys.modules["fields_program"]
    ranks, alone = np.load(tmp_path / "fields-ranks.npz"), np.load(tmp_path / "fields-single.npz")
    for field in ("queries", "corpus"):
        np.testing.assert_array_equal(ranks[field], alone[field])
    assert not np.array_equal(ranks["queries"][:5], alone["corpus"][:5])
    [ranked] = r0["records"]
    assert ranked["metrics"] == single["metrics"] and ranked["encoder"]["fields"] == single["encoder"]["fields"]
    assert ranked["encoder"]["fields"]["queries"] == {"role": "query", "prompt": "query:"}
