"""Corpora for `newsqa bench`: a real folder read as Articles, larger ones recombined from its sentences.

Larger corpora are generated at run time, never stored: their sentences come from the real
articles (so the token lengths, vocabulary and sentence shapes are those of news text), shuffled
into new articles with their own titles, dates and sources. For the index-size sweep the chunks and
their vectors are made directly: each vector mixes two real chunk vectors with a little noise, so
the collection clusters like real text does instead of spreading uniformly over the sphere (which
would flatter or punish the HNSW graph in ways real news never does).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from app.documents import Article, Chunk
from app.sentences import split_sentences
from ingest.sources import Failure, Limits, Loader, expand

SOURCES = ("Daily Ledger", "Evening Courier", "Harbour Times", "Metro Wire", "Valley Gazette")
FIRST_DAY = date(2015, 1, 1)
DAYS = 3650


def read_articles(folder: Path) -> list[Article]:
    """The articles of a folder, parsed as `newsqa ingest` parses them."""
    articles: list[Article] = []
    with Loader(Limits(max_bytes=50_000_000, timeout=10.0)) as loader:
        for item in expand([str(folder)]):
            loaded = [item] if isinstance(item, Failure) else loader.load(item)
            for result in loaded:
                if isinstance(result, Failure):
                    raise RuntimeError(f"cannot read {result.source}: {result.reason}")
                articles.append(result)
    if not articles:
        raise RuntimeError(f"no articles in {folder}")
    return articles


def sentences_of(articles: list[Article]) -> list[str]:
    return [a.body[s.start : s.end] for a in articles for s in split_sentences(a.body)]


def write_articles(folder: Path, count: int, sentences: list[str], seed: int = 0) -> list[Path]:
    """`count` Markdown articles of 12 to 40 recombined sentences, in paragraphs of 1 to 4."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number in range(count):
        body = rng.sample(sentences, rng.randint(12, 40))
        paragraphs, at = [], 0
        while at < len(body):
            size = rng.randint(1, 4)
            paragraphs.append(" ".join(body[at : at + size]))
            at += size
        title = " ".join(rng.choice(sentences).split()[: rng.randint(5, 10)]).rstrip(".,;:")
        published = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        front = (
            f'---\ntitle: "{title.replace(chr(34), chr(39))} ({number})"\npublished: {published.isoformat()}\n'
            f'source: "{rng.choice(SOURCES)}"\n---\n\n'
        )
        path = folder / f"synthetic-{number:05d}.md"
        path.write_text(front + "\n\n".join(paragraphs) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


class SyntheticChunks:
    """Chunks and vectors made straight for the index, `per_article` chunks an article."""

    def __init__(
        self, sentences: list[str], vectors: np.ndarray, seed: int = 0, per_article: int = 5, noise: float = 0.15
    ):
        self._sentences = sentences
        self._vectors = vectors
        self._rng = np.random.default_rng(seed)
        self._random = random.Random(seed)
        self.per_article = per_article
        self._noise = noise

    def batch(self, first_article: int, articles: int) -> tuple[list[Chunk], np.ndarray]:
        chunks: list[Chunk] = []
        for number in range(first_article, first_article + articles):
            chunks += self._article_chunks(number)
        pairs = self._rng.integers(0, len(self._vectors), size=(len(chunks), 2))
        weights = self._rng.uniform(0.3, 0.7, size=(len(chunks), 1))
        mixed = weights * self._vectors[pairs[:, 0]] + (1 - weights) * self._vectors[pairs[:, 1]]
        mixed += self._rng.normal(0, self._noise / np.sqrt(mixed.shape[1]), size=mixed.shape)
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        return chunks, mixed.astype(np.float32)

    def _article_chunks(self, number: int) -> list[Chunk]:
        rng = self._random
        pieces = [" ".join(rng.sample(self._sentences, rng.randint(3, 6))) for _ in range(self.per_article)]
        body = "\n".join(pieces)
        article = Article(
            title=" ".join(rng.choice(self._sentences).split()[:8]) + f" ({number})",
            body=body,
            origin=f"synthetic://{number}",
            published=FIRST_DAY + timedelta(days=rng.randrange(DAYS)),
            source=rng.choice(SOURCES),
            file=f"synthetic-{number:07d}.md",
        )
        chunks, start = [], 0
        for index, piece in enumerate(pieces):
            chunks.append(
                Chunk(
                    article=article,
                    index=index,
                    count=len(pieces),
                    text=piece,
                    start=start,
                    end=start + len(piece),
                    embed_text=piece,
                    embed_tokens=len(piece.split()),  # unused: these chunks' vectors are made above, not embedded
                )
            )
            start += len(piece) + 1
        return chunks
