"""Retrieval: fusion and merging on hand-made inputs (fast), filters and dates on a real Chroma index."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.documents import Filters
from app.engine import Engine
from app.index import StoredChunk, admits
from app.retrieval import (
    MODES,
    Retriever,
    Window,
    confidence,
    fuse,
    matching_sources,
    merge_passages,
    merge_text,
    metadata_filter,
    reciprocal_rank_fusion,
)
from eval.bench.compare_retrieval import compare, missed, mode_rankers
from eval.dataset import Question
from tests.conftest import make_settings

# -- fusion


def test_fusion_rewards_items_both_rankings_agree_on():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "c"]], k=60)
    assert [item for item, _ in fused] == ["b", "c", "a", "d"]
    assert fused[0][1] == pytest.approx(1 / 62 + 1 / 61)


def test_fusion_weights_and_constant():
    rankings = [["dense-first", "x", "both"], ["lexical-first", "y", "both"]]
    assert reciprocal_rank_fusion(rankings, [1.0, 3.0], k=1)[0][0] == "lexical-first"
    assert reciprocal_rank_fusion(rankings, [3.0, 1.0], k=1)[0][0] == "dense-first"
    # A large constant flattens the ranks: agreement (third twice) beats one first place; a small
    # one does not.
    assert reciprocal_rank_fusion(rankings, k=60)[0][0] == "both"
    assert reciprocal_rank_fusion(rankings, k=0.5)[0][0] == "dense-first"


def test_fusion_ties_keep_the_order_first_met():
    fused = reciprocal_rank_fusion([["x", "y"], ["y", "x"]])
    assert [item for item, _ in fused] == ["x", "y"]
    assert reciprocal_rank_fusion([]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"], ["b"]], [1.0])


def test_confidence_is_how_far_the_best_stands_out():
    assert confidence([("a", 10.0), ("b", 2.0), ("c", 1.0)], rank=3) == pytest.approx(0.9)
    assert confidence([("a", 0.5), ("b", 0.5), ("c", 0.5)]) == 0.0
    assert confidence([("a", 0.8), ("b", 0.6), ("c", 0.4)], rank=2) == pytest.approx(0.25)
    assert confidence([("a", 3.0)]) == confidence([]) == 1.0
    assert confidence([("a", -0.1), ("b", -0.2)]) == 1.0


def test_fuse_lets_the_surer_side_lead():
    sure = [("s1", 9.0), ("s2", 1.0), ("s3", 0.9)]
    flat = [("f1", 1.0), ("f2", 0.99), ("f3", 0.98)]
    assert fuse(sure, flat, depth=3, rrf_k=5, lexical_weight=1.0)[0][0] == "s1"
    assert fuse(flat, sure, depth=3, rrf_k=5, lexical_weight=1.0)[0][0] == "s1"
    # The weight tips a balance between equally sure sides.
    assert fuse(sure, [("t1", 9.0), ("t2", 1.0)], depth=3, rrf_k=5, lexical_weight=2.0)[0][0] == "t1"


def test_fuse_adds_the_typo_corrected_ranking_beside_the_query_as_typed():
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.4)]
    typed = [("b", 2.0), ("a", 1.9)]  # the misspelt name matched nothing: only common words count
    corrected = [("c", 9.0), ("b", 1.0)]  # the corrected name finds the chunk that holds it
    plain = fuse(dense, typed, depth=3, rrf_k=5, lexical_weight=2.0)
    with_correction = fuse(dense, typed, depth=3, rrf_k=5, lexical_weight=2.0, corrected=corrected)
    assert [i for i, _ in plain][0] != "c" and [i for i, _ in with_correction][0] == "c"
    # No correction: the same fusion as before, to the score.
    assert fuse(dense, typed, depth=3, rrf_k=5, lexical_weight=2.0, corrected=()) == plain


def test_fuse_puts_candidates_past_the_depth_after_the_fused_head():
    dense = [("a", 0.9), ("b", 0.5), ("deep-both", 0.4)]
    lexical = [("c", 5.0), ("d", 1.0), ("deep-both", 0.5)]
    fused = fuse(dense, lexical, depth=2, rrf_k=1, lexical_weight=1.0)
    # BM25 is surer (confidence 0.9 against 0.56): its first two lead. "deep-both" would rank second
    # on the full lists, but it lies past the depth on both sides: it comes last, its score capped.
    assert [i for i, _ in fused] == ["c", "d", "a", "b", "deep-both"]
    assert fused[-1][1] == fused[-2][1]


# -- filters


def test_metadata_filter():
    assert metadata_filter() is None
    assert metadata_filter(sources=["VOA"]) == {"source": {"$in": ["VOA"]}}
    assert metadata_filter(since=date(2024, 1, 2), until=date(2024, 3, 4), window=Window(20240201, 20240220)) == {
        "$and": [
            {"published_day": {"$gte": 20240102}},
            {"published_day": {"$lte": 20240304}},
            {
                "$or": [
                    {"dated": False},
                    {"$and": [{"published_day": {"$gte": 20240201}}, {"published_day": {"$lte": 20240220}}]},
                ]
            },
        ]
    }
    assert metadata_filter(window=Window(None, 20240220)) == {
        "$or": [{"dated": False}, {"published_day": {"$lte": 20240220}}]
    }


def test_matching_sources_ignore_case_and_take_a_part_of_the_name():
    known = ["Coast Daily", "Voice of America (voanews.com)", "VOA", "Inland Times"]
    assert matching_sources("voa", known) == ["VOA"]  # the exact name wins over names that contain it
    assert matching_sources("Voice of America", known) == ["Voice of America (voanews.com)"]
    assert matching_sources(" times ", known) == ["Inland Times"]
    assert matching_sources("OA", known) == ["Coast Daily", "Voice of America (voanews.com)", "VOA"]
    assert matching_sources("Nobody", known) == []


def test_window_ends_at_as_of():
    assert Window.of(date(2024, 3, 20)) == Window(None, 20240320)
    assert Window(None, 20240201).outside() == {"published_day": {"$gt": 20240201}}
    assert Window(20240301, 20240316).outside() == {
        "$or": [{"published_day": {"$lt": 20240301}}, {"published_day": {"$gt": 20240316}}]
    }


# -- merging neighbouring chunks

BODY = "One fish. Two fish. Red fish. Blue fish. Old fish. New fish. This one has a star."


def chunk(article: str, index: int, first_sentence: int, last_sentence: int) -> StoredChunk:
    """A chunk of BODY from one sentence to another (0-based, inclusive), as the index stores it."""
    ends = [i + 1 for i, c in enumerate(BODY) if c == "."]
    starts = [0] + [end + 1 for end in ends[:-1]]
    start, end = starts[first_sentence], ends[last_sentence]
    return StoredChunk(
        f"{article}-{index}",
        BODY[start:end],
        {
            "article_id": article,
            "title": f"Title {article}",
            "source": "Test",
            "url": "",
            "file": f"{article}.md",
            "chunk_index": index,
            "chunk_count": 9,
            "char_start": start,
            "char_end": end,
        },
    )


def test_merge_text_tells_the_overlap_once():
    first, second = chunk("a", 0, 0, 2), chunk("a", 1, 2, 4)  # both hold "Red fish."
    text, start, end = merge_text([second, first])
    assert (text, start, end) == ("One fish. Two fish. Red fish. Blue fish. Old fish.", 0, 50)
    assert text == BODY[start:end]


def test_merge_text_keeps_offsets_true_across_a_gap_and_skips_contained_chunks():
    text, start, end = merge_text([chunk("a", 0, 0, 1), chunk("a", 1, 2, 3)])
    assert text == BODY[start:end] == "One fish. Two fish. Red fish. Blue fish."
    text, start, end = merge_text([chunk("a", 0, 1, 4), chunk("a", 1, 2, 3), chunk("a", 2, 4, 5)])
    assert text == BODY[start:end] == "Two fish. Red fish. Blue fish. Old fish. New fish."


def test_neighbours_join_the_passage_they_touch():
    ranked = [
        (chunk("a", 1, 2, 3), 0.9),
        (chunk("b", 0, 0, 1), 0.8),
        (chunk("a", 2, 3, 4), 0.7),
        (chunk("a", 5, 5, 6), 0.6),
        (chunk("c", 0, 0, 0), 0.5),
    ]
    passages = merge_passages(ranked, k=3, max_chunks=3)
    assert [p.chunk_ids for p in passages] == [("a-1", "a-2"), ("b-0",), ("a-5",)]
    assert [p.rank for p in passages] == [1, 2, 3]
    assert [p.score for p in passages] == [0.9, 0.8, 0.6]
    assert passages[0].text == BODY[passages[0].start : passages[0].end]


def test_a_chunk_between_two_passages_makes_them_one():
    ranked = [
        (chunk("a", 0, 0, 1), 0.9),
        (chunk("a", 2, 3, 4), 0.8),
        (chunk("a", 1, 1, 3), 0.7),
        (chunk("b", 0, 0, 1), 0.6),
    ]
    passages = merge_passages(ranked, k=2, max_chunks=3)
    assert [p.chunk_ids for p in passages] == [("a-0", "a-1", "a-2"), ("b-0",)]
    assert passages[0].text == BODY[passages[0].start : passages[0].end]


def test_merging_stops_at_max_chunks_and_k():
    ranked = [(chunk("a", i, i, i + 1), 1.0 - i / 10) for i in range(5)]
    assert [p.chunk_ids for p in merge_passages(ranked, k=5, max_chunks=2)] == [
        ("a-0", "a-1"),
        ("a-2", "a-3"),
        ("a-4",),
    ]
    assert [p.chunk_ids for p in merge_passages(ranked, k=5, max_chunks=1)] == [(f"a-{i}",) for i in range(5)]
    assert [p.chunk_ids for p in merge_passages(ranked, k=1, max_chunks=1)] == [("a-0",)]


# -- a real index of dated articles

ARTICLES = {
    "reopens.md": (
        "Harbor bridge reopens to traffic",
        "2024-03-10",
        "Coast Daily",
        "The harbor bridge reopened to traffic on Sunday after two months of repairs. "
        "Drivers crossed the bridge again as the mayor cut a ribbon.",
    ),
    "closes.md": (
        "Harbor bridge closes for repairs",
        "2024-01-15",
        "Coast Daily",
        "The harbor bridge closed on Monday for repairs to its cables. "
        "Engineers expect the bridge to stay shut for two months.",
    ),
    "inspection.md": (
        "Inspectors report on the harbor bridge",
        "2024-02-20",
        "Inland Times",
        "State inspectors said the harbor bridge cables were badly corroded. "
        "The report urged faster repairs on every bridge in the region.",
    ),
    "history.md": (
        "A history of the harbor bridge",
        None,
        "Inland Times",
        "The harbor bridge opened a century ago as the longest bridge in the state. "
        "Its cables were replaced once, after a storm.",
    ),
    "tolls.md": (
        "Tolls planned on the harbor bridge",
        "2024-04-05",
        "Coast Daily",
        "The city plans tolls on the harbor bridge to pay for the repairs. "
        "Drivers will pay two dollars to cross the bridge.",
    ),
}
TITLES = {name: title for name, (title, *_rest) in ARTICLES.items()}


@pytest.fixture(scope="module")
def dated_engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("dated")
    (folder / "articles").mkdir()
    for name, (title, published, source, body) in ARTICLES.items():
        date_line = f"date: {published}\n" if published else ""
        front_matter = f'---\ntitle: "{title}"\n{date_line}source: "{source}"\n---\n\n'
        (folder / "articles" / name).write_text(front_matter + body + "\n")
    engine = Engine(make_settings(folder / "index"))
    report = engine.add([str(folder / "articles")], progress=False)
    assert report.counts()["added"] == len(ARTICLES)
    return engine


@pytest.mark.slow
def test_filters_judged_here_admit_what_chroma_admits(dated_engine):
    # Filtered searches judge candidates' metadata in Python (Chroma's own filtering reads every
    # chunk's metadata); every filter newsqa builds must admit exactly what Chroma admits.
    collection = dated_engine.index._collection
    every = collection.get(include=["metadatas"])
    windows = [Window(None, 20240301), Window(20240201, 20240320), Window(20240401, 20240410)]
    filters = [
        metadata_filter(sources=sources, since=since, until=until, window=window)
        for sources in ([], ["Coast Daily"], ["Coast Daily", "Inland Times"])
        for since, until in ((None, None), (date(2024, 2, 1), None), (None, date(2024, 3, 1)))
        for window in (None, *windows)
    ]
    assert sum(f is not None for f in filters) == len(filters) - 1
    for where in filter(None, filters):
        by_chroma = set(collection.get(where=where, include=[])["ids"])
        by_us = {i for i, m in zip(every["ids"], every["metadatas"]) if admits(where, m)}
        assert by_us == by_chroma, where
        assert dated_engine.index.admitted(every["ids"], where) == by_chroma


@pytest.mark.slow
@pytest.mark.parametrize("limit", [2, 64])
def test_a_filtered_embedding_search_finds_what_chromas_own_filtering_finds(dated_engine, limit, monkeypatch):
    from app import index

    # The question is nearest to Coast Daily articles, so few unfiltered candidates pass the filter.
    # Limit 2: the search stops widening and leaves the filter to Chroma; 64: it widens to every chunk.
    monkeypatch.setattr(index, "OVERSAMPLE", 2)
    monkeypatch.setattr(index, "OVERSAMPLE_LIMIT", limit)
    question = dated_engine.embedder.encode(["Tolls planned on the harbor bridge to pay for the repairs"])[0]
    where = metadata_filter(sources=["Inland Times"])
    chroma = dated_engine.index._collection.query(query_embeddings=[question], n_results=2, where=where, include=[])[
        "ids"
    ][0]
    assert len(chroma) == 2
    assert [i for i, _ in dated_engine.index.dense(question, 2, where)] == chroma


def files(engine: Engine, question: str, mode: str = "hybrid", **kwargs) -> set[str]:
    return {p.file for p in engine.retriever.retrieve(question, k=10, mode=mode, **kwargs)}


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_as_of_leaves_out_later_articles_and_keeps_undated_ones(dated_engine, mode):
    question = "harbor bridge repairs"
    assert files(dated_engine, question, mode, as_of=date(2024, 3, 31)) == {
        "reopens.md",
        "closes.md",
        "inspection.md",
        "history.md",
    }
    assert files(dated_engine, question, mode, as_of=date(2024, 4, 5)) == set(ARTICLES)
    assert files(dated_engine, question, mode, as_of=date(2024, 1, 31)) == {"closes.md", "history.md"}


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_source_and_date_filters_are_strict(dated_engine, mode):
    as_of = date(2024, 12, 31)
    question = "harbor bridge cables"
    assert files(dated_engine, question, mode, as_of=as_of, filters=Filters(source="Inland Times")) == {
        "inspection.md",
        "history.md",
    }
    # An undated article cannot be shown to fall in a window the user asked for.
    assert files(dated_engine, question, mode, as_of=as_of, filters=Filters(since=date(2024, 2, 20))) == {
        "inspection.md",
        "reopens.md",
        "tolls.md",
    }
    assert files(dated_engine, question, mode, as_of=as_of, filters=Filters(until=date(2024, 2, 19))) == {"closes.md"}
    assert files(
        dated_engine,
        question,
        mode,
        as_of=as_of,
        filters=Filters(source="Coast Daily", since=date(2024, 2, 1), until=date(2024, 3, 31)),
    ) == {"reopens.md"}
    assert files(dated_engine, question, mode, as_of=as_of, filters=Filters(source="Nobody")) == set()
    assert files(dated_engine, question, mode, as_of=as_of, filters=Filters(source="coast")) == {
        "reopens.md",
        "closes.md",
        "tolls.md",
    }


def ranked_files(engine: Engine, question: str, **kwargs) -> list[str]:
    return [p.file for p in engine.retriever.retrieve(question, k=10, **kwargs)]


@pytest.mark.slow
def test_a_period_in_the_question_is_preferred_not_cut(dated_engine):
    as_of = date(2024, 4, 30)
    in_march = ranked_files(dated_engine, "What happened to the harbor bridge in March?", as_of=as_of)
    plain = ranked_files(dated_engine, "What happened to the harbor bridge?", as_of=as_of)
    # The March article leads, and nothing published by the "as of" date is left out.
    assert in_march[0] == "reopens.md"
    assert set(in_march) == set(plain) == set(ARTICLES)
    last_month = ranked_files(dated_engine, "What happened to the harbor bridge last month?", as_of=date(2024, 2, 10))
    assert last_month[0] == "closes.md"
    assert set(last_month) == {"closes.md", "history.md"}  # the "as of" date still cuts
    # A period no article falls in ("this week", the articles being older) empties nothing.
    assert set(
        ranked_files(dated_engine, "What happened to the harbor bridge this week?", as_of=date(2024, 3, 20))
    ) == {"reopens.md", "closes.md", "inspection.md", "history.md"}
    # Explicit filters stay strict: only the dated articles up to March 5.
    assert set(
        ranked_files(
            dated_engine,
            "What happened to the harbor bridge in March?",
            as_of=as_of,
            filters=Filters(until=date(2024, 3, 5)),
        )
    ) == {"closes.md", "inspection.md"}


@pytest.mark.slow
def test_recent_news_come_first_when_asked_for(dated_engine):
    as_of = date(2024, 4, 30)

    def rank_of_newest(question: str) -> int:
        passages = dated_engine.retriever.retrieve(question, as_of=as_of, k=10)
        return next(p.rank for p in passages if p.file == "tolls.md")

    assert rank_of_newest("What is the latest on the harbor bridge cables?") < rank_of_newest(
        "What is on the harbor bridge cables?"
    )


@pytest.mark.slow
def test_engine_retrieve_defaults_and_bad_input(dated_engine):
    passages = dated_engine.retrieve("harbor bridge")
    assert len(passages) == dated_engine.settings.top_k == 5
    assert [p.rank for p in passages] == [1, 2, 3, 4, 5]
    assert all(a.score >= b.score for a, b in zip(passages, passages[1:]))
    top = dated_engine.retrieve("harbor bridge tolls two dollars", k=1)
    assert len(top) == 1 and top[0].title == TITLES["tolls.md"] and top[0].source == "Coast Daily"
    assert top[0].published == date(2024, 4, 5)
    with pytest.raises(ValueError, match="empty"):
        dated_engine.retrieve("   ")
    with pytest.raises(ValueError, match="k must be"):
        dated_engine.retrieve("harbor bridge", k=0)
    with pytest.raises(ValueError, match=r"since \(2024-05-01\) is after until \(2024-04-01\)"):
        dated_engine.retrieve("harbor bridge", filters=Filters(since=date(2024, 5, 1), until=date(2024, 4, 1)))
    with pytest.raises(ValueError, match="retrieval mode"):
        dated_engine.retriever.retrieve("harbor bridge", mode="sparse")


@pytest.mark.slow
def test_k_passages_even_past_the_fusion_depth(dated_engine):
    shallow = dated_engine.settings.model_copy(update={"retrieval_depth": 1, "passage_chunks": 1})
    retriever = Retriever(shallow, dated_engine.index, dated_engine.embedder)
    passages = retriever.retrieve("harbor bridge", as_of=date(2024, 12, 31), k=5)
    assert {p.file for p in passages} == set(ARTICLES)


@pytest.mark.slow
def test_neighbouring_chunks_merge_into_one_passage(tmp_path: Path):
    # Sentences 20 to 27 alone tell of the spillway: the chunks that hold them, neighbours, rank first.
    sentences = [
        f"Sentence {n} of the long report on the river dam describes the dam in detail."
        if not 20 <= n <= 27
        else f"Sentence {n} says the spillway gates jammed open in the flood."
        for n in range(40)
    ]
    (tmp_path / "dam.md").write_text('---\ntitle: "River dam report"\n---\n\n' + " ".join(sentences) + "\n")
    engine = Engine(make_settings(tmp_path / "index", chunk_tokens=64, chunk_overlap_tokens=20))
    engine.add([str(tmp_path / "dam.md")], progress=False)
    assert engine.index.count() >= 6
    passages = engine.retriever.retrieve("spillway gates jammed open in the flood", k=2)
    merged = [p for p in passages if len(p.chunk_ids) > 1]
    assert merged, "no neighbouring chunks were merged"
    for passage in passages:
        chunks = engine.index.chunks(passage.chunk_ids)
        indexes = [c.metadata["chunk_index"] for c in chunks]
        assert indexes == list(range(indexes[0], indexes[0] + len(indexes)))
        assert len(passage.text) == passage.end - passage.start
        for c in chunks:  # every chunk sits at its own offsets in the merged text: no overlap repeated
            offset = c.metadata["char_start"] - passage.start
            assert passage.text[offset : offset + len(c.text)] == c.text
    assert sum(p.text.count("Sentence 5 of") for p in passages) <= 1


@pytest.mark.slow
def test_seed_question_finds_geneva_first(seed_engine):
    passages = seed_engine.retrieve("Where will the talks with the U.S. take place?")
    assert passages and "Geneva" in passages[0].text
    assert passages[0].rank == 1 and passages[0].file == "000_416442306511e572.txt"


# -- the comparison of modes


def test_compare_counts_hits_and_names_the_misses_with_their_rank():
    ranked = {  # files each mode retrieves, best first, for questions q1 and q2
        "dense": {"q1": ["x", "x", "x", "x", "x", "x", "a"], "q2": ["b"]},
        "lexical": {"q1": ["a"], "q2": ["x"] * 12 + ["b"]},
    }

    def retrieve(question, as_of, k, mode):
        return [SimpleNamespace(file=f) for f in ranked[mode][question][:k]]

    engine = SimpleNamespace(retrieve=retrieve)
    questions = [Question(name, name, (), (evidence,), True) for name, evidence in (("q1", "a"), ("q2", "b"))]
    figures = compare(mode_rankers(engine, modes=("dense", "lexical")), questions)
    assert figures["dense"]["hits"] == figures["lexical"]["hits"] == 1
    assert figures["dense"]["mrr@10"] == pytest.approx((1 / 7 + 1) / 2)
    assert figures["lexical"]["mrr@10"] == pytest.approx(0.5)
    assert [(q.id, rank) for q, rank in figures["dense"]["misses"]] == [("q1", 7)]
    assert [(q.id, rank) for q, rank in figures["lexical"]["misses"]] == [("q2", None)]
    assert missed(figures).splitlines() == [
        "missed by dense (embeddings): 1",
        "  q1  rank 7  q1",
        "missed by BM25: 1",
        "  q2  rank -  q2",
    ]
