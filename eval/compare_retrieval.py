"""Dense-only, BM25-only and hybrid retrieval compared on one eval dataset.

    python -m eval.compare_retrieval DATASET [--articles DIR] [--depth N] [--rrf-k K]

DATASET is a folder holding questions.jsonl and articles/ (or a questions file with --articles).
For each answerable question with evidence, the passages retrieved (as the user gets them, by the
question's date when it has one) are scored at the article level: hit@5, whether one of the first
five passages comes from an evidence article; MRR@10, the mean of 1 / rank of the first such
passage within ten. The index of the articles is built once and kept (see eval.indexes).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from app.settings import Settings
from eval.dataset import ARTICLES_FOLDER, QUESTIONS_FILE, load
from eval.indexes import engine_for
from eval.metrics import hit_at, mean, mrr_at, percentile

LABELS = {"dense": "dense (embeddings)", "lexical": "BM25", "hybrid": "hybrid (fused)"}


def compare(engine, questions, modes=("dense", "lexical", "hybrid")) -> dict[str, dict[str, float]]:
    """hit@5, MRR@10 and the median retrieval time of each mode over the questions."""
    figures = {}
    for mode in modes:
        hits, ranks, times = [], [], []
        for question in questions:
            started = time.perf_counter()
            passages = engine.retriever.retrieve(question.question, as_of=question.question_date, k=10, mode=mode)
            times.append((time.perf_counter() - started) * 1000)
            files = [p.file for p in passages]
            hits.append(hit_at(files, question.evidence, 5))
            ranks.append(mrr_at(files, question.evidence, 10))
        figures[mode] = {"hit@5": mean(hits), "mrr@10": mean(ranks), "ms_p50": percentile(times, 50)}
    return figures


def table(figures: dict[str, dict[str, float]], count: int) -> str:
    lines = [f"{'retrieval':<20} {'hit@5':>6} {'MRR@10':>7} {'ms p50':>7}   ({count} questions)"]
    for mode, row in figures.items():
        lines.append(f"{LABELS[mode]:<20} {row['hit@5']:>6.3f} {row['mrr@10']:>7.3f} {row['ms_p50']:>7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.compare_retrieval", description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", type=Path, help="folder with questions.jsonl and articles/, or a questions file")
    parser.add_argument("--articles", type=Path, help="articles folder (default: articles/ beside the questions)")
    parser.add_argument("--depth", type=int, help="candidates each side brings to the fusion (NEWSQA_RETRIEVAL_DEPTH)")
    parser.add_argument("--rrf-k", type=float, help="reciprocal rank fusion constant (NEWSQA_RRF_K)")
    parser.add_argument("--lexical-weight", type=float, help="weight of BM25 in the fusion (NEWSQA_LEXICAL_WEIGHT)")
    args = parser.parse_args(argv)

    questions_file = args.dataset / QUESTIONS_FILE if args.dataset.is_dir() else args.dataset
    articles = args.articles or questions_file.parent / ARTICLES_FOLDER
    if not questions_file.is_file():
        parser.error(f"no questions file at {questions_file}")
    overrides = {name: value for name, value in (("retrieval_depth", args.depth), ("rrf_k", args.rrf_k),
                                                 ("lexical_weight", args.lexical_weight)) if value is not None}
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
    print(f"{dataset.name}: depth {settings.retrieval_depth}, rrf k {settings.rrf_k:g}, "
          f"BM25 weight {settings.lexical_weight:g}, passages of up to {settings.passage_chunks} chunks")
    print(table(compare(engine, questions), len(questions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
