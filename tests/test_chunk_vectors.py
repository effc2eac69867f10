"""A chunk's vector: its article's header embedded once, mixed with its new sentences by word pieces."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from app.documents import Article
from app.embedders import make_embedder
from app.settings import Settings
from conftest import ROOT, SEEDS
from eval.bench.corpus import read_articles
from ingest.chunk_vectors import ChunkVectors
from ingest.chunking import chunk_article, chunk_header
from ingest.pipeline import Ingestor


def word_count(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def articles() -> list[Article]:
    sentences = " ".join(f"Sentence number {n} has exactly seven words." for n in range(12))
    return [
        Article(title="Harbour ferry", body=sentences, origin="/x/ferry.txt", published=date(2024, 3, 1)),
        Article(title="Orchard", body="Apples grew early this year.", origin="/x/orchard.txt"),
    ]


def test_each_header_is_embedded_once_before_the_chunks():
    chunks = [c for a in articles() for c in chunk_article(a, word_count, 30, 8)]
    assert len(chunks) > 3
    plan = ChunkVectors(chunks, word_count)
    assert plan.texts == ["Harbour ferry (2024-03-01)\n", "Orchard\n", *(c.embed_text for c in chunks)]


def test_a_chunk_vector_weighs_header_and_sentences_by_word_pieces():
    ferry, orchard = articles()
    chunks = chunk_article(ferry, word_count, 30, 8)[:2] + chunk_article(orchard, word_count, 30, 8)
    plan = ChunkVectors(chunks, word_count)
    # One axis for each text embedded: the mix shows each part's weight.
    vectors = plan.vectors(np.eye(len(plan.texts), dtype=np.float32))
    header_words = [len(chunk_header(c.article).split()) for c in chunks]  # 3 for the ferry, 1 for the orchard
    for row, chunk in enumerate(chunks):
        expected = np.zeros(len(plan.texts), dtype=np.float32)
        expected[0 if chunk.article is ferry else 1] = header_words[row]
        expected[2 + row] = chunk.embed_tokens
        np.testing.assert_allclose(vectors[row], expected / np.linalg.norm(expected), rtol=1e-6)


def test_no_chunks_no_texts():
    plan = ChunkVectors([], word_count)
    assert plan.texts == [] and plan.vectors(np.zeros((0, 384), dtype=np.float32)).shape == (0, 384)


@pytest.mark.slow
def test_chunk_vectors_stay_close_to_the_header_and_passage_embedded_together():
    """The mix stands for the header embedded with every chunk: on the seed and fixture articles, close
    to that text's own vector (realtimeqa_2022: mean cosine 0.94)."""
    embedder = make_embedder(Settings())
    ingestor = Ingestor(Settings(), None, embedder)
    chunks = [
        c
        for a in read_articles(ROOT / "tests" / "fixtures" / "articles") + read_articles(SEEDS)
        for c in ingestor.chunk(a)
    ]
    plan = ChunkVectors(chunks, embedder.count_tokens)
    mixed = plan.vectors(embedder.encode(plan.texts))
    together = embedder.encode([chunk_header(c.article) + c.embed_text for c in chunks])
    cosines = np.sum(mixed * together, axis=1)
    assert len(chunks) > 10 and cosines.mean() >= 0.9, cosines
