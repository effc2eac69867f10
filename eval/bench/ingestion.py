"""Ingestion side by side: newsqa's pipeline, the raw embedding model on the same chunk texts, and the
pipeline of the LangChain tutorial on the same articles; retrieval quality of both indexes.

Every timing is taken with the models already loaded (their load time is reported apart), and as
wall time and as CPU time (this process's, and its embedding children's): the machine is shared, and
CPU time is the steadier of the two when other work competes for the cores.
"""

from __future__ import annotations

import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.documents import Article
from app.embedding import Embedder, resolve_model_path
from app.engine import Engine
from app.settings import Settings
from app.timing import Timing, timed
from eval import metrics
from eval.dataset import Question
from ingest.chunk_vectors import ChunkVectors
from ingest.pipeline import Ingestor


@dataclass
class IngestRun:
    name: str
    articles: int
    chunks: int
    time: Timing  # CPU time: this process's and its embedding children's
    cpu_parts: dict[str, float] = field(default_factory=dict)  # where the CPU time went, when known

    def rates(self) -> dict[str, float]:
        return {"articles_per_s": self.articles / self.time.wall, "chunks_per_s": self.chunks / self.time.wall}


def children_cpu() -> float:
    """CPU seconds of this process's children that have ended (the embedding workers, once closed)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ingest_ours(folder: Path, settings: Settings, embedder: Embedder, name: str = "newsqa") -> tuple[IngestRun, Engine]:
    """`newsqa ingest FOLDER` into a fresh index, with the CPU time spent embedding (here or in the
    embedding child processes, their start-up included) and writing told apart."""
    engine = Engine(settings, embedder)  # the loaded model, shared by every run
    children = children_cpu()
    with timed() as total:
        report = engine.add([str(folder)], progress=False)
    children = children_cpu() - children
    if not report.ok:
        raise RuntimeError(f"ingest of {folder} failed: {report.summary()}")
    embed, write = report.spent["embed"].cpu, report.spent["write"].cpu
    here = total.cpu
    total.cpu += children
    return IngestRun(
        name,
        report.counts()["added"],
        engine.index.count(),
        total,
        {"embed": embed + children, "write": write, "read, chunk, BM25": here - embed - write},
    ), engine


def embedding_plan(articles: list[Article], settings: Settings, embedder: Embedder) -> ChunkVectors:
    """What newsqa embeds for these articles, chunked as it chunks them: each title header once, then
    each chunk's new sentences (`.texts`); `len()` is the number of chunks."""
    ingestor = Ingestor(settings, None, embedder)  # chunking needs no index
    return ChunkVectors([c for a in articles for c in ingestor.chunk(a)], embedder.count_tokens)


def encode_raw(texts: list[str], embedder: Embedder, sort_by_length: bool = True) -> Timing:
    """The embedding model alone on `texts`: one encode call (sentence-transformers sorts a call's
    texts by length, so each batch pads little), or batch by batch in the given order."""
    with timed() as spent:
        if sort_by_length:
            embedder.encode(texts)
        else:
            for start in range(0, len(texts), embedder.batch_size):
                embedder.encode(texts[start : start + embedder.batch_size])
    return spent


def tutorial_embeddings():
    """HuggingFaceEmbeddings over the same local model (the tutorial names it on the hub)."""
    from langchain_huggingface import HuggingFaceEmbeddings

    from app.settings import DEFAULT_EMBEDDING_MODEL

    return HuggingFaceEmbeddings(model_name=resolve_model_path(DEFAULT_EMBEDDING_MODEL))


def ingest_tutorial(articles: list[Article], embeddings, folder: Path) -> tuple[IngestRun, object]:
    """RecursiveCharacterTextSplitter(1000, 200) + HuggingFaceEmbeddings + Chroma.from_documents, as
    the LangChain tutorial writes it, on the articles newsqa read (title, blank line, body)."""
    import chromadb
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    documents = [Document(page_content=f"{a.title}\n\n{a.body}", metadata={"file": a.file}) for a in articles]
    with timed() as total:
        splits = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(documents)
        store = Chroma.from_documents(
            splits,
            embeddings,
            persist_directory=str(folder),
            client_settings=chromadb.Settings(anonymized_telemetry=False),
        )
    return IngestRun("LangChain tutorial", len(articles), len(splits), total), store


def retrieval_quality(ranked_files: Callable[[Question], list[str]], questions: list[Question]) -> dict[str, float]:
    """hit@5 and MRR@10 over the questions with evidence, the eval suite's definitions."""
    figures = metrics.ranking_quality(ranked_files, questions)
    return {"hit@5": figures["hit@5"], "mrr@10": figures["mrr@10"]}


def ours_ranked(engine: Engine) -> Callable[[Question], list[str]]:
    return lambda q: [p.file for p in engine.retrieve(q.question, as_of=q.question_date, k=metrics.RANKING_DEPTH)]


def tutorial_ranked(store) -> Callable[[Question], list[str]]:
    return lambda q: [d.metadata["file"] for d in store.similarity_search(q.question, k=metrics.RANKING_DEPTH)]


def embedding_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of two encodings of the same texts (1.0: identical vectors)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.mean(np.sum(a * b, axis=1)))
