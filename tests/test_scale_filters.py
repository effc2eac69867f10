"""Reads and filters that must not grow with the index: SQLite refuses a statement with more than
32,766 variables, and Chroma spends one on every id or value a request names and every record it
returns. The index here holds more articles, and more distinct publication days, than that."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import bm25s
import numpy as np
import pytest

from app import lexical
from app.documents import Article, Chunk, Filters
from app.index import Index
from app.lexical import LexicalIndex, tokenize
from app.retrieval import MODES, Retriever
from tests.conftest import make_settings

DATED = 33_000  # one article a day: more articles and more days than SQLite has variables
FIRST_DAY = date(1900, 1, 1)
# Articles from this one on say "closure" twice, so for a question about closures they outrank every
# earlier article, and a window that ends before them has to look deep into the BM25 ranking.
LATE = 30_000
DIMENSION = 8
UNDATED_DIRECTION = np.eye(DIMENSION, dtype=np.float32)[0]


def day(number: int) -> date:
    return FIRST_DAY + timedelta(days=number)


def one_chunk(article: Article) -> Chunk:
    return Chunk(
        article=article,
        index=0,
        count=1,
        text=article.body,
        start=0,
        end=len(article.body),
        embed_text=article.body,
        embed_tokens=len(article.body.split()),
    )


def articles() -> list[Article]:
    dated = [
        Article(
            title=f"Report {n}",
            origin=f"report-{n}",
            file=f"report-{n}.md",
            published=day(n),
            source="Coast Daily" if n % 2 else "Inland Times",
            body=f"Report {n} on the harbor bridge closure." + (" Closure again." if n >= LATE else ""),
        )
        for n in range(DATED)
    ]
    undated = [
        Article(
            title=f"Undated note {n}",
            origin=f"note-{n}",
            file=f"note-{n}.md",
            source="Inland Times",
            body="An undated note on the harbor bridge closure.",
        )
        for n in range(2)
    ]
    return dated + undated


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Index:
    index = Index(make_settings(tmp_path_factory.mktemp("scale") / "index"), "test vectors")
    rng = np.random.default_rng(0)
    chunks = [one_chunk(a) for a in articles()]
    for start in range(0, len(chunks), 1000):  # as ingestion writes: a batch of articles at a time
        part = chunks[start : start + 1000]
        vectors = rng.normal(size=(len(part), DIMENSION)).astype(np.float32)
        vectors[[c.article.published is None for c in part]] = UNDATED_DIRECTION  # the undated notes lead
        index.write(part, vectors)
    return index


@pytest.fixture(scope="module")
def retriever(index: Index) -> Retriever:
    # Questions embed to the undated notes' direction, so the dense side ranks them first when admitted.
    embedder = SimpleNamespace(encode=lambda texts: np.tile(UNDATED_DIRECTION, (len(texts), 1)))
    return Retriever(make_settings(index._lexical_folder.parent), index, embedder)


def published(retriever: Retriever, question: str, mode: str, k: int = 10, **kwargs) -> list[date | None]:
    return [p.published for p in retriever.retrieve(question, k=k, mode=mode, **kwargs)]


@pytest.mark.slow
def test_every_article_is_listed(index):
    listed = index.articles()
    assert len(listed) == DATED + 2
    assert len({a.id for a in listed}) == DATED + 2


@pytest.mark.slow
def test_chunks_are_read_by_any_number_of_ids(index):
    ids = [one_chunk(a).id for a in articles()]
    assert [c.id for c in index.chunks(ids)] == ids


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_as_of_leaves_out_more_days_than_sqlite_variables_and_keeps_undated(retriever, mode):
    as_of = day(100)  # leaves out 32,899 publication days
    found = published(retriever, "undated note on the harbor bridge closure", mode, as_of=as_of)
    assert len(found) == 10
    assert found.count(None) == 2
    assert all(d is None or d <= as_of for d in found)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_admitted_hits_deep_in_the_ranking_are_found(retriever, mode):
    as_of = day(LATE - 1)  # admits 30,002 chunks, but the best 3,000 BM25 hits lie after it
    found = published(retriever, "closure again", mode, as_of=as_of)
    assert len(found) == 10
    assert all(d is None or d <= as_of for d in found)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_strict_filters_leave_out_undated_articles(retriever, mode):
    since, until = day(20_000), day(20_003)
    found = published(
        retriever,
        "harbor bridge closure",
        mode,
        as_of=day(DATED),
        filters=Filters(since=since, until=until, source="Coast Daily"),
    )
    assert sorted(found) == [day(20_001), day(20_003)]  # odd days are Coast Daily's


def test_paged_lexical_build_scores_as_one_whole_build(monkeypatch):
    texts = [
        "The harbor bridge closed for repairs.",
        "",
        "Repairs to the bridge cables.",
        "the and of",
        "Tolls on the harbor bridge pay for the repairs.",
        "A storm closed the harbor.",
    ]
    ids = [f"c{n}" for n in range(len(texts))]
    whole = bm25s.BM25()
    whole.index(tokenize(texts, as_ids=True), show_progress=False)
    monkeypatch.setattr(lexical, "BUILD_PAGE", 4)  # pages of 4 and 2 texts
    paged = LexicalIndex.build("r", ((i, t, {}) for i, t in zip(ids, texts)))
    assert paged.ids == ids
    for question in ("harbor bridge repairs", "storm", "cables tolls", "closed harbor"):
        expected = LexicalIndex("r", ids, whole, paged.days, paged.source_names, paged.sources).search(
            question, len(ids)
        )
        got = paged.search(question, len(ids))
        assert [i for i, _ in got] == [i for i, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected])


def test_chunks_written_before_the_dated_field_are_written_again(tmp_path):
    index = Index(make_settings(tmp_path / "index"), "test vectors")
    article = Article(title="Old", body="An article indexed by an older newsqa.", origin="old")
    index.write([one_chunk(article)], np.ones((1, DIMENSION), dtype=np.float32))
    assert index.complete_articles([article.id]) == {article.id: article.content_hash}
    index._collection.update(ids=[one_chunk(article).id], metadatas=[{"dated": None}])  # None removes a field
    assert index.complete_articles([article.id]) == {}
