"""Dense-only, BM25-only and hybrid retrieval compared on one eval dataset, and with --tutorial the
LangChain tutorial's retrieval on the same articles in the same run.

    python -m eval.bench.compare_retrieval DATASET [--articles DIR] [--depth N] [--rrf-k K] [--misses] [--tutorial]

DATASET is a folder holding questions.jsonl and articles/ (or a questions file with --articles).
For each answerable question with evidence, the passages retrieved (as the user gets them, by the
question's date when it has one) are scored at the article level: hit@5, whether one of the first
five passages comes from an evidence article; MRR@10, the mean of 1 / rank of the first such
passage within ten. The index of the articles is built once and kept (see eval.indexes).
--misses lists, for each mode, the questions whose evidence is not among the first five passages.
--tutorial adds two rows: the tutorial as written (RecursiveCharacterTextSplitter 1000/200,
HuggingFaceEmbeddings over the same MiniLM, Chroma, `similarity_search`; it knows no dates, so it
ranks every article whatever the question's date) and BM25 alone on the tutorial's chunks (bm25s,
as newsqa tokenises). Building the tutorial's index embeds every article with torch: minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from app.lexical import LexicalIndex
from app.settings import Settings
from eval.dataset import ARTICLES_FOLDER, QUESTIONS_FILE, Question, load
from eval.indexes import engine_for
from eval.metrics import RANKING_DEPTH, ranking_quality

LABELS = {"dense": "dense (embeddings)", "lexical": "BM25", "hybrid": "hybrid (fused)"}
TUTORIAL = "tutorial (dense)"
TUTORIAL_BM25 = "BM25, tutorial chunks"
# Files of the passages a ranker retrieves for a question, best first.
Ranker = Callable[[Question], list[str]]


def mode_rankers(engine, modes=("dense", "lexical", "hybrid")) -> dict[str, Ranker]:
    """newsqa's retrieval in each mode, as of each question's date."""

    def ranker(mode: str) -> Ranker:
        return lambda q: [
            p.file for p in engine.retrieve(q.question, as_of=q.question_date, k=RANKING_DEPTH, mode=mode)
        ]

    return {mode: ranker(mode) for mode in modes}


def tutorial_rankers(articles: Path, folder: Path) -> dict[str, Ranker]:
    """The LangChain tutorial's retrieval over `articles` (its Chroma store written in `folder`), and
    BM25 alone on the tutorial's chunks."""
    from eval.bench import corpus, ingestion

    _, store = ingestion.ingest_tutorial(corpus.read_articles(articles), ingestion.tutorial_embeddings(), folder)
    chunks = store.get(include=["documents", "metadatas"])
    files = [m["file"] for m in chunks["metadatas"]]
    bm25 = LexicalIndex.build("tutorial", ((str(n), text, {}) for n, text in enumerate(chunks["documents"])))
    return {
        TUTORIAL: ingestion.tutorial_ranked(store),
        TUTORIAL_BM25: lambda q: [files[int(i)] for i, _ in bm25.search(q.question, RANKING_DEPTH)],
    }


def compare(rankers: dict[str, Ranker], questions) -> dict[str, dict]:
    """Each ranker's hit@5, MRR@10, median time and misses (eval.metrics.ranking_quality)."""
    return {name: ranking_quality(ranked_files, questions) for name, ranked_files in rankers.items()}


def table(figures: dict[str, dict], count: int) -> str:
    lines = [f"{'retrieval':<22} {'hit@5':>6} {'hits':>5} {'MRR@10':>7} {'ms p50':>7}   ({count} questions)"]
    for name, row in figures.items():
        lines.append(
            f"{LABELS.get(name, name):<22} {row['hit@5']:>6.3f} {row['hits']:>5} {row['mrr@10']:>7.3f} "
            f"{row['ms_p50']:>7.1f}"
        )
    return "\n".join(lines)


def missed(figures: dict[str, dict]) -> str:
    """The questions each mode misses at 5: id, rank of the first evidence passage (- past ten), question."""
    lines = []
    for name, row in figures.items():
        lines.append(f"missed by {LABELS.get(name, name)}: {len(row['misses'])}")
        lines.extend(f"  {question.id}  rank {rank or '-'}  {question.question}" for question, rank in row["misses"])
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m eval.bench.compare_retrieval", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("dataset", type=Path, help="folder with questions.jsonl and articles/, or a questions file")
    parser.add_argument("--articles", type=Path, help="articles folder (default: articles/ beside the questions)")
    parser.add_argument("--depth", type=int, help="candidates each side brings to the fusion (NEWSQA_RETRIEVAL_DEPTH)")
    parser.add_argument("--rrf-k", type=float, help="reciprocal rank fusion constant (NEWSQA_RRF_K)")
    parser.add_argument("--lexical-weight", type=float, help="weight of BM25 in the fusion (NEWSQA_LEXICAL_WEIGHT)")
    parser.add_argument("--misses", action="store_true", help="list the questions each mode misses at 5")
    parser.add_argument(
        "--tutorial",
        action="store_true",
        help="also the LangChain tutorial's retrieval and BM25 on its chunks (minutes)",
    )
    args = parser.parse_args(argv)

    questions_file = args.dataset / QUESTIONS_FILE if args.dataset.is_dir() else args.dataset
    articles = args.articles or questions_file.parent / ARTICLES_FOLDER
    if not questions_file.is_file():
        parser.error(f"no questions file at {questions_file}")
    overrides = {
        name: value
        for name, value in (
            ("retrieval_depth", args.depth),
            ("rrf_k", args.rrf_k),
            ("lexical_weight", args.lexical_weight),
        )
        if value is not None
    }
    try:
        settings = Settings(**overrides)
        dataset = load(questions_file)
        engine = engine_for(articles, settings)
    except (RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    questions = [q for q in dataset.questions if q.answerable and q.evidence]
    if not questions:
        print(f"error: no answerable question with evidence in {questions_file}", file=sys.stderr)
        return 1
    print(
        f"{dataset.name}: depth {settings.retrieval_depth}, rrf k {settings.rrf_k:g}, "
        f"BM25 weight {settings.lexical_weight:g}, passages of up to {settings.passage_chunks} chunks"
    )
    rankers = mode_rankers(engine)
    with tempfile.TemporaryDirectory(prefix="newsqa-tutorial-") as scratch:
        if args.tutorial:
            rankers.update(tutorial_rankers(articles, Path(scratch)))
        figures = compare(rankers, questions)
    print(table(figures, len(questions)))
    if args.misses:
        print(missed(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
