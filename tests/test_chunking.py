"""Chunk sizes against the embedding model's real tokenizer; offsets, overlap and coverage."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from app.documents import Article
from app.embedders import make_embedder
from app.embedding import Embedder, load_sentence_transformer
from app.sentences import split_sentences
from app.settings import Settings
from conftest import QUAIL
from ingest import chunking
from ingest.chunking import CHARS_PER_TOKEN, chunk_article, chunk_header
from ingest.sources import Limits, Loader, expand

QUAIL_ARTICLES = QUAIL / "articles"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "articles"


def word_count(texts: list[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def article(body: str, title: str = "Title", published: date | None = None) -> Article:
    return Article(title=title, body=body, origin=f"/x/{title}.txt", published=published)


def assert_well_formed(chunks, art: Article):
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert {c.count for c in chunks} == {len(chunks)}
    embedded_until = chunks[0].start
    for chunk in chunks:
        assert art.body[chunk.start : chunk.end] == chunk.text
        # Embedded: the sentences no earlier chunk embedded, so that each sentence is embedded once,
        # and every chunk embeds at least one.
        fresh = chunk.embed_text
        fresh_start = chunk.end - len(fresh)
        assert fresh and chunk.text.endswith(fresh)
        assert fresh_start >= embedded_until and not art.body[embedded_until:fresh_start].strip()
        embedded_until = chunk.end
    # The chunks run in order and together cover the body: between them, white space at most.
    sentences = split_sentences(art.body)
    assert chunks[0].start == sentences[0].start and chunks[-1].end == sentences[-1].end
    for a, b in zip(chunks, chunks[1:]):
        assert a.start < b.start and a.end < b.end
        assert not art.body[a.end : b.start].strip()


# -- packing logic, with words standing in for word pieces


def test_sentences_packed_up_to_the_budget_with_overlap():
    body = " ".join(f"Sentence number {n} has six words." for n in range(1, 21))  # 20 x 6 words
    art = article(body)
    chunks = chunk_article(art, word_count, max_tokens=31, overlap_tokens=12)  # header "Title": 1 word
    assert_well_formed(chunks, art)
    assert [len(c.text.split()) for c in chunks][:-1] == [30] * (len(chunks) - 1)  # 5 sentences each
    for a, b in zip(chunks, chunks[1:]):
        carried = art.body[b.start : a.end]
        assert len(carried.split()) == 12  # two whole sentences repeated


def test_no_overlap_when_zero():
    art = article(" ".join(f"Sentence number {n} has six words." for n in range(1, 11)))
    chunks = chunk_article(art, word_count, max_tokens=19, overlap_tokens=0)
    assert_well_formed(chunks, art)
    assert all(a.end < b.start for a, b in zip(chunks, chunks[1:]))


def test_overlap_never_stalls_on_sentences_bigger_than_it():
    art = article(" ".join(f"Sentence {n} is rather long and has exactly ten words." for n in range(1, 9)))
    chunks = chunk_article(art, word_count, max_tokens=21, overlap_tokens=15)
    assert_well_formed(chunks, art)
    assert len(chunks) == 7  # two sentences a chunk, one carried over each time


def test_sentence_longer_than_the_budget_is_cut_at_words():
    art = article("word " * 95 + "end. Short one after.")
    chunks = chunk_article(art, word_count, max_tokens=31, overlap_tokens=0)
    assert [len(c.text.split()) for c in chunks] == [30, 30, 30, 6 + 3]
    assert [art.body[c.start : c.end] for c in chunks] == [c.text for c in chunks]


def test_sentence_longer_than_the_overlap_is_carried_if_under_half_a_chunk():
    seven = "This sentence has seven words in it."
    art = article(" ".join([seven] * 8))
    chunks = chunk_article(art, word_count, max_tokens=22, overlap_tokens=5)  # budget 21: three sentences
    assert_well_formed(chunks, art)
    assert all(len(art.body[b.start : a.end].split()) == 7 for a, b in zip(chunks, chunks[1:]))
    # Over half the budget: carrying it would leave the next chunk little room of its own.
    art = article(
        "Three words here. " + " ".join(["This one is a much longer sentence of exactly twelve words here."] * 3)
    )
    chunks = chunk_article(art, word_count, max_tokens=17, overlap_tokens=5)  # budget 16
    assert_well_formed(chunks, art)
    assert [len(c.text.split()) for c in chunks] == [3 + 12, 12, 12]


def test_empty_body_gives_no_chunks():
    assert chunk_article(article("   "), word_count, 50, 10) == []


def test_header_carries_title_and_date():
    art = article("Body text here.", title="Storm", published=date(2024, 1, 31))
    assert chunk_header(art) == "Storm (2024-01-31)\n"
    [chunk] = chunk_article(art, word_count, 50, 10)
    assert (chunk.embed_text, chunk.embed_tokens) == ("Body text here.", 3)


def test_embed_tokens_count_the_sentences_embedded():
    body = " ".join(f"Sentence number {n} has exactly seven words." for n in range(20))
    chunks = chunk_article(article(body), word_count, 30, 8)
    assert len(chunks) > 2
    assert [c.embed_tokens for c in chunks] == [len(c.embed_text.split()) for c in chunks]


# -- the character cap: the model's tokenizer reads a word over 100 characters as one unknown piece,
# as word_count reads any word as one


def test_text_without_spaces_is_cut_at_characters():
    art = article("x" * 18_000_000)  # 18 MB of one word: one token to the tokenizer
    seen = []

    def counting(texts: list[str]) -> list[int]:
        seen.extend(len(t) for t in texts)
        return word_count(texts)

    chunks = chunk_article(art, counting, max_tokens=201, overlap_tokens=40)  # header "Title": 1 word
    assert_well_formed(chunks, art)
    assert {len(c.text) for c in chunks[:-1]} == {200 * CHARS_PER_TOKEN}
    assert "".join(c.text for c in chunks) == art.body  # cut apart, nothing repeated
    assert max(seen) <= 200 * CHARS_PER_TOKEN  # the tokenizer never saw the whole text


@pytest.mark.parametrize(
    "body",
    [
        "新闻报道中国经济增长" * 32_000,  # 320,000 characters of a script written without spaces
        "!" * 320_000,  # punctuation without a space: sentence splitting once took n^2 steps on it
    ],
)
def test_text_of_a_word_piece_a_character_is_cut_to_the_budget(body):
    art = article(body)
    seen = []

    def a_piece_a_character(texts: list[str]) -> list[int]:
        seen.extend(len(t) for t in texts)
        return [len(t) for t in texts]

    chunks = chunk_article(art, a_piece_a_character, max_tokens=201, overlap_tokens=40)  # header "Title\n": 6
    assert_well_formed(chunks, art)
    assert max(c.embed_tokens for c in chunks) <= 195  # before: 1950, ten times what the model reads
    assert {len(c.text) for c in chunks[:-1]} == {195}
    assert "".join(c.text for c in chunks) == art.body  # cut apart, nothing repeated
    assert sum(seen) <= 3 * len(body)  # each character counted a few times, not once a cut


def test_long_word_among_sentences_is_cut_and_the_rest_packed_as_before():
    body = "Before it. " + "y" * 700 + " after it. Next one here."
    art = article(body)
    chunks = chunk_article(art, word_count, max_tokens=31, overlap_tokens=0)  # 300 characters a chunk
    assert_well_formed(chunks, art)
    assert [c.text for c in chunks] == ["Before it.", "y" * 300, "y" * 300, "y" * 100 + " after it. Next one here."]


def test_character_cap_bounds_packing_and_overlap():
    hundred = "A" + "a" * 98 + "."  # one word, so one token
    art = article(" ".join([hundred] * 10))
    chunks = chunk_article(art, word_count, max_tokens=31, overlap_tokens=5)  # 300 characters a chunk
    assert_well_formed(chunks, art)
    assert [len(c.text) for c in chunks] == [201] * 9  # two sentences each, one carried over
    # A sentence is carried over only if it leaves room for the next one.
    short, long = "A" + "a" * 47 + ".", "B" + "b" * 249 + "."
    art = article(" ".join([short, short, short, long]))
    chunks = chunk_article(art, word_count, max_tokens=31, overlap_tokens=5)
    assert_well_formed(chunks, art)
    assert [c.text for c in chunks] == [" ".join([short] * 3), long]


# -- the real tokenizer


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return make_embedder(Settings())


@pytest.fixture(scope="module")
def model_tokenizer():
    """The model's tokenizer as sentence-transformers loads it: an independent count to check against."""
    return load_sentence_transformer(Settings().embedding_model).tokenizer


def real_articles() -> list[Article]:
    sources = [str(FIXTURES)] + ([str(QUAIL_ARTICLES)] if QUAIL_ARTICLES.exists() else [])
    with Loader(Limits(max_bytes=10**7, timeout=5)) as loader:
        return [a for item in expand(sources) for a in loader.load(item) if isinstance(a, Article)]


@pytest.mark.slow
@pytest.mark.parametrize(("max_tokens", "overlap"), [(200, 40), (254, 40), (1000, 0)])
def test_no_embedded_text_is_cut_off_by_the_model(embedder, model_tokenizer, max_tokens, overlap):
    articles = real_articles()
    assert len(articles) >= 10
    budget = min(max_tokens, embedder.window - 2)  # what the pipeline passes
    for art in articles:
        chunks = chunk_article(art, embedder.count_tokens, budget, overlap)
        assert chunks, art.title
        assert_well_formed(chunks, art)
        # The header counts against each chunk's budget, as if it were embedded with every chunk.
        with_specials = model_tokenizer([chunk_header(art) + c.embed_text for c in chunks], truncation=False)[
            "input_ids"
        ]
        assert max(len(ids) for ids in with_specials) <= min(budget + 2, embedder.window), art.title
        if overlap:
            assert all(b.start < a.end for a, b in zip(chunks, chunks[1:])), art.title


@pytest.mark.slow
def test_run_on_text_without_sentence_ends_fits_the_window(embedder, model_tokenizer):
    # Word pieces, not words: long numbers and rare words count several pieces each.
    art = article(" ".join(f"Zwischenergebnis{n}x{n * 7919}" for n in range(600)), title="Tabelle")
    chunks = chunk_article(art, embedder.count_tokens, embedder.window - 2, 40)
    assert len(chunks) > 1
    assert_well_formed(chunks, art)
    sizes = [len(ids) for ids in model_tokenizer([chunk_header(art) + c.embed_text for c in chunks])["input_ids"]]
    assert max(sizes) <= embedder.window


@pytest.mark.slow
def test_model_window_is_what_the_model_reads(embedder):
    assert embedder.window == 256
    assert embedder.dimension == 384


@pytest.mark.slow
def test_character_cap_changes_no_chunk_of_real_articles(embedder, monkeypatch):
    articles = real_articles()
    capped = [[(c.start, c.end) for c in chunk_article(a, embedder.count_tokens, 200, 40)] for a in articles]
    monkeypatch.setattr(chunking, "CHARS_PER_TOKEN", 10**9)
    uncapped = [[(c.start, c.end) for c in chunk_article(a, embedder.count_tokens, 200, 40)] for a in articles]
    assert capped == uncapped


@pytest.mark.slow
@pytest.mark.parametrize(
    "body",
    [
        "Zwischenergebnis" * 60_000,  # 960,000 characters, no space
        "新闻报道中国经济增长" * 32_000,  # 320,000, a word piece each
        "中国经济。" * 64_000,  # and in sentences
        "!?" * 160_000,
    ],
)
def test_text_without_spaces_fits_the_window_and_the_cap(embedder, model_tokenizer, body):
    art = article(body, title="Tabelle")
    budget = embedder.window - 2
    chunks = chunk_article(art, embedder.count_tokens, budget, 40)
    assert_well_formed(chunks, art)
    assert max(len(c.text) for c in chunks) <= budget * CHARS_PER_TOKEN
    sizes = [len(ids) for ids in model_tokenizer([chunk_header(art) + c.embed_text for c in chunks])["input_ids"]]
    assert max(sizes) <= embedder.window


def test_a_carried_sentence_never_makes_a_chunk_of_its_own():
    """The last sentence is carried only when the next new one still fits beside it: otherwise the
    next chunk would hold the carried sentence alone, a repeat with nothing new."""
    short, carried, long = "One two three four five six.", "Seven " * 8 + "nine.", "Long " * 14 + "fifteen."
    art = article(f"{short} {carried} {long}")
    chunks = chunk_article(art, word_count, max_tokens=21, overlap_tokens=4)  # a budget of 20 words
    assert_well_formed(chunks, art)
    assert [c.text for c in chunks] == [f"{short} {carried}", long]
