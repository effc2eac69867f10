"""The embedding backends: the ONNX export (int8 or fp32) against sentence-transformers on torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.embedders import cuda_available, embedding_device, make_embedder
from app.embedding import TorchEmbedder
from app.engine import Engine
from app.index import Index
from app.settings import Settings
from conftest import ROOT, SEED_FILE, SEEDS
from eval.bench.corpus import read_articles
from ingest.chunk_vectors import ChunkVectors
from ingest.pipeline import Ingestor

FIXTURE_ARTICLES = ROOT / "tests" / "fixtures" / "articles"

TEXTS = [
    "Where will the talks with the U.S. take place?",
    "Russian and American negotiators are to meet in Geneva next month.",
    "The ferry timetable changes on Monday.",
    "Shares fell sharply after the central bank raised interest rates for the third time this year.",
    "A much longer text about a harbour and its ferries, which runs past the model's window. " * 30,
]


@pytest.fixture(scope="module")
def onnx():
    return make_embedder(Settings())


@pytest.fixture(scope="module")
def torch_embedder():
    return make_embedder(Settings(embedding_backend="torch"))


@pytest.mark.slow
def test_onnx_vectors_agree_with_torch(onnx, torch_embedder):
    ours, exact = onnx.encode(TEXTS), torch_embedder.encode(TEXTS)
    assert ours.shape == exact.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(ours * exact, axis=1)
    assert cosines.min() > 0.97, cosines
    # Agreement that matters for retrieval: every text is still nearest to its own torch vector.
    assert list(np.argmax(ours @ exact.T, axis=1)) == list(range(len(TEXTS)))


@pytest.mark.slow
def test_onnx_counts_tokens_and_reads_the_window_as_the_model_does(onnx, torch_embedder):
    assert onnx.window == torch_embedder.window == 256
    assert onnx.dimension == torch_embedder.dimension == 384
    assert onnx.count_tokens(TEXTS) == torch_embedder.count_tokens(TEXTS)
    assert onnx.count_tokens(TEXTS)[-1] > 256  # counting is not cut at the window
    # ...and encoding still is: a text past the window gets the vector of its first 256 word pieces.
    cut = onnx.encode([TEXTS[-1], TEXTS[-1] + " Completely different closing words about rockets."])
    assert np.allclose(cut[0], cut[1], atol=1e-6)


@pytest.mark.slow
def test_a_vector_does_not_depend_on_the_texts_encoded_with_it(onnx):
    together = onnx.encode(TEXTS * 3)
    alone = np.stack([onnx.encode([text])[0] for text in TEXTS])
    assert np.allclose(together, np.tile(alone, (3, 1)), atol=1e-6)  # companions do not shift a vector
    assert onnx.encode([]).shape == (0, 384)


@pytest.mark.slow
def test_the_export_is_made_once_and_then_loads_without_torch(tmp_path: Path):
    import logging

    cache = tmp_path / "models"
    handlers = list(logging.root.handlers)
    make_embedder(Settings(model_cache=cache)).encode(["first use exports the model"])
    assert [p.name for p in cache.iterdir()] and not list(cache.glob("*.partial"))
    assert logging.root.handlers == handlers  # the quantiser's logging set-up does not outlive it
    script = (
        "import sys; from pathlib import Path; from app.settings import Settings; "
        "from app.embedders import make_embedder; "
        f"e = make_embedder(Settings(model_cache=Path({str(cache)!r}))); v = e.encode(['hello']); "
        "print(v.shape, 'torch' in sys.modules, e.choice['source'])"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(1, 384) False recorded"  # the first use's choice of variant, not timed again
    assert "preparing" not in done.stderr  # no second export


@pytest.mark.slow
def test_a_failed_export_leaves_nothing_behind(tmp_path: Path, monkeypatch):
    import onnxruntime.quantization

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(onnxruntime.quantization, "quantize_dynamic", fail)
    cache = tmp_path / "models"
    with pytest.raises(RuntimeError, match="disk full"):
        make_embedder(Settings(model_cache=cache)).encode(["x"])
    assert list(cache.iterdir()) == []


@pytest.mark.slow
def test_each_backend_runs_on_the_threads_it_is_given():
    import torch

    onnx = make_embedder(Settings(embedding_threads=1))
    onnx.encode(["one thread"])
    assert onnx._session.get_session_options().intra_op_num_threads == 1

    before = torch.get_num_threads()
    torch.set_num_threads(2)  # as torch starts on a 2-core machine
    try:
        TorchEmbedder("all-MiniLM-L6-v2", "cpu", 8, threads=1).encode(["one thread"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.parametrize(
    "built_with, asked_with",
    [("torch", "onnx-int8"), ("onnx-int8", "torch"), ("onnx-fp32", "onnx-int8"), ("onnx-int8", "onnx-fp32")],
)
def test_an_index_built_by_one_backend_answers_through_the_other(tmp_path: Path, built_with, asked_with):
    """A GPU builds with torch, a laptop asks with onnx-int8, and the other way round; a machine without
    VNNI ingests with onnx-fp32 into the index that one with VNNI asks with onnx-int8."""
    built = Engine(Settings(index=tmp_path / "index", embedding_backend=built_with))
    assert built.add([str(SEEDS), str(FIXTURE_ARTICLES)], progress=False).ok
    asked = Engine(Settings(index=tmp_path / "index", embedding_backend=asked_with))
    passages = asked.retriever.retrieve("Where will the talks with the U.S. take place?", mode="dense")
    assert passages and passages[0].file == SEED_FILE.name


@pytest.mark.slow
def test_backends_agree_on_real_chunks(onnx, torch_embedder):
    """What an ingest embeds for the seed and fixture articles, both ways: close enough to search each other."""
    chunks = [
        c
        for a in read_articles(FIXTURE_ARTICLES) + read_articles(SEEDS)
        for c in Ingestor(Settings(), None, onnx).chunk(a)
    ]
    texts = ChunkVectors(chunks, onnx.count_tokens).texts
    cosines = np.sum(onnx.encode(texts) * torch_embedder.encode(texts), axis=1)
    assert len(texts) > 10 and cosines.mean() >= 0.99 and cosines.min() > 0.97, cosines


def test_an_index_of_another_model_is_refused(tmp_path: Path):
    older = Index(Settings(index=tmp_path / "index"), "all-MiniLM-L6-v2")
    older._collection.modify(metadata={"embedding_model": "all-MiniLM-L6-v2 (onnx-int8)"})  # as older indexes name it
    assert Index(Settings(index=tmp_path / "index"), "all-MiniLM-L6-v2")  # the same model: accepted
    with pytest.raises(RuntimeError, match="built with embedding model 'all-MiniLM-L6-v2'.*NEWSQA_EMBEDDING_MODEL"):
        Index(Settings(index=tmp_path / "index"), "multi-qa-mpnet-base")


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_without_cuda_the_cpu_is_chosen_and_cuda_asked_for_is_a_clear_error():
    assert embedding_device(Settings()) == "cpu"
    assert make_embedder(Settings()).device == "cpu"
    for device in ("cuda", "cuda:1"):
        with pytest.raises(RuntimeError, match=f"NEWSQA_EMBEDDING_DEVICE={device}, but torch sees no CUDA device"):
            make_embedder(Settings(embedding_device=device))
    with pytest.raises(ValueError, match="embedding_device"):
        Settings(embedding_device="gpu")


@pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")
def test_newsqa_ingest_with_cuda_asked_for_and_missing_says_so_in_one_line(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "--index", str(tmp_path / "index"), "ingest", str(SEEDS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NEWSQA_EMBEDDING_DEVICE": "cuda"},
    )
    assert done.returncode != 0
    assert "torch sees no CUDA device" in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not cuda_available(), reason="no CUDA device here")
def test_gpu_vectors_agree_with_the_cpus(onnx):
    gpu = make_embedder(Settings(embedding_device="cuda"))
    assert gpu.device == "cuda"
    cosines = np.sum(onnx.encode(TEXTS) * gpu.encode(TEXTS), axis=1)
    assert cosines.mean() >= 0.99 and cosines.min() > 0.97, cosines
