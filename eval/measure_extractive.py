"""Calibrate the extractive answerer's refusal threshold on a dataset with unanswerable questions.

    python -m eval.measure_extractive [QUESTIONS.jsonl ARTICLES_FOLDER] [--k K] [--sweep]

For every question: retrieve as the engine does, score the passage sentences, keep the
strongest evidence (what the refusal rests on) and the answer the sentences would give. Then, for
the threshold in app.extractive (and with --sweep for a range of thresholds): the refusal rate on
unanswerable questions, the false-refusal rate on answerable ones, and answer containment (a gold
answer appears in the answer, normalised as the eval suite does; a refusal contains nothing).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app import extractive
from app.settings import Settings
from eval.dataset import load
from eval.indexes import engine_for
from eval.metrics import answer_contains

QUAIL = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "quail_news"


@dataclass(frozen=True)
class Scored:
    answerable: bool
    evidence: float
    contains: bool  # the gold answer is in the answer given when not refused


def score_dataset(questions_file: Path, articles: Path, k: int | None = None) -> list[Scored]:
    engine = engine_for(articles, Settings(llm="extractive"))
    results = []
    for question in load(questions_file).questions:
        passages = engine.retrieve(question.question, as_of=question.question_date, k=k)
        extract = extractive.extract_answer(question.question, passages, engine.embedder, threshold=float("-inf"))
        contains = bool(answer_contains(extract.answer, question.answers)) if question.answerable else False
        results.append(Scored(question.answerable, extract.evidence, contains))
    return results


def figures(results: list[Scored], threshold: float) -> dict[str, float]:
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    return {
        "threshold": threshold,
        "refusal_rate": float(np.mean([r.evidence < threshold for r in unanswerable])),
        "false_refusal_rate": float(np.mean([r.evidence < threshold for r in answerable])),
        "answer_contains": float(np.mean([r.contains and r.evidence >= threshold for r in answerable])),
    }


def _row(f: dict[str, float]) -> str:
    return (f"{f['threshold']:9.2f}  {f['refusal_rate']:12.3f}  {f['false_refusal_rate']:18.3f}  "
            f"{f['answer_contains']:15.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.measure_extractive", description=__doc__.split("\n\n")[0])
    parser.add_argument("questions", nargs="?", type=Path, default=QUAIL / "questions.jsonl")
    parser.add_argument("articles", nargs="?", type=Path, default=QUAIL / "articles")
    parser.add_argument("--k", type=int, help="passages retrieved per question (default: the engine's)")
    parser.add_argument("--sweep", action="store_true", help="also print a range of thresholds")
    args = parser.parse_args(argv)
    if not args.questions.is_file():
        print(f"questions file not found: {args.questions}", file=sys.stderr)
        return 2
    results = score_dataset(args.questions, args.articles, args.k)
    answerable = sum(r.answerable for r in results)
    print(f"{len(results)} questions: {answerable} answerable, {len(results) - answerable} unanswerable")
    print(f"answer containment without refusals: {np.mean([r.contains for r in results if r.answerable]):.3f}")
    print("threshold  refusal_rate  false_refusal_rate  answer_contains")
    if args.sweep:
        scores = sorted({round(r.evidence, 2) for r in results})
        for threshold in np.arange(scores[0], scores[-1] + 0.02, 0.02):
            print(_row(figures(results, float(threshold))))
        print("current:")
    print(_row(figures(results, extractive.REFUSAL_THRESHOLD)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
